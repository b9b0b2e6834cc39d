"""The FaceHash section of docs/ACCURACY.md (tools/evaluate.py): FaceHash against the int8 embedding and MD5,
across keys (unlinkability, D↔sys) and across runtimes (int8 vs the float rebuild)."""

from __future__ import annotations

import itertools

import lfw
import numpy as np


def d_sys(mated: np.ndarray, nonmated: np.ndarray, bins: int = 30) -> float:
    """Gomez-Barrero et al. (IEEE TIFS 2018) system unlinkability D↔sys, from histograms; 0 = unlinkable."""
    edges = np.linspace(min(mated.min(), nonmated.min()), max(mated.max(), nonmated.max()) + 1e-9, bins + 1)
    pm = np.histogram(mated, edges)[0] / len(mated)
    pn = np.histogram(nonmated, edges)[0] / len(nonmated)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(pn > 0, pm / pn, np.inf)
        local = np.where(np.isinf(lr), 1.0, np.where(lr > 1, 2 * lr / (1 + lr) - 1, 0.0))
    return float(np.sum(pm * local))


def hamming_similarity(codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
    return 1.0 - np.mean(codes_a != codes_b, axis=1)


def population_pairs(data: lfw.Embedded, impostors: int = 300_000) -> tuple[np.ndarray, ...]:
    """Every same-person pair of different photos in the set, and many random different-person pairs:
    far more comparisons than the pairs file, so TAR at FAR 1e-3 and D↔sys rest on more than a few pairs."""
    names = np.array([p.parent.name for p in data.paths])
    mated = [(x, y) for n in np.unique(names) for x, y in itertools.combinations(np.flatnonzero(names == n), 2)]
    i, j = np.random.default_rng(0).integers(0, len(names), (2, impostors))
    keep = names[i] != names[j]
    mi, mj = np.array(mated).T
    return mi, mj, i[keep], j[keep]


def tar_population(similarity, pairs: tuple[np.ndarray, ...], far: float = 1e-3) -> float:
    mi, mj, ni, nj = pairs
    threshold = np.quantile(similarity(ni, nj), 1 - far)
    return float(np.mean(similarity(mi, mj) > threshold))


def facehash_section(data: lfw.Embedded, reference: np.ndarray, impostors: int = 300_000) -> list[str]:
    """FaceHash against the embedding and MD5, across keys, and across runtimes (int8 vs float)."""
    import hashlib

    from edge.core.facehash import FaceHasher, Key, load_scheme

    scheme = load_scheme()
    keys = [Key(hashlib.sha256(f"traceon-edge evaluation key {i}".encode()).digest()) for i in range(4)]
    a, b, same = data.a, data.b, data.same
    population = population_pairs(data, impostors)
    v = data.vectors
    cosine = lfw.scores(np.sum(v[a] * v[b], axis=1), same)
    cos_tar = tar_population(lambda i, j: np.sum(v[i] * v[j], axis=1), population)
    rows = [
        f"| int8 embedding, cosine | {100 * cosine['acc']:.2f}% | {100 * cosine['tar']:.1f}% "
        f"| {100 * cos_tar:.1f}% | — |"
    ]
    for bits in (128, 256, 512, 1024):
        results, tars = [], []
        for key in keys[:3]:
            codes = FaceHasher(key, scheme, bits).codes(v)
            results.append(lfw.scores(hamming_similarity(codes[a], codes[b]), same))
            tars.append(tar_population(lambda i, j, c=codes: hamming_similarity(c[i], c[j]), population))
        acc, tar = [r["acc"] for r in results], [r["tar"] for r in results]
        rows.append(
            f"| FaceHash {bits} bits | {100 * np.mean(acc):.2f}% ({100 * min(acc):.2f}–{100 * max(acc):.2f}) "
            f"| {100 * np.mean(tar):.1f}% ({100 * min(tar):.1f}–{100 * max(tar):.1f}) "
            f"| {100 * np.mean(tars):.1f}% ({100 * min(tars):.1f}–{100 * max(tars):.1f}) "
            f"| {scheme['thresholds'][str(bits)]} |"
        )
    md5 = [hashlib.md5(x.astype(np.float32).tobytes()).hexdigest() for x in v]
    md5_equal = np.array([md5[i] == md5[j] for i, j in zip(a, b, strict=True)])
    rows.append(
        f"| MD5 of the embedding, exact equality | {100 * np.mean(md5_equal == same):.2f}% "
        f"| {100 * md5_equal[same].mean():.1f}% of same-person pairs equal | — | equal |"
    )

    one, two = (FaceHasher(k, scheme) for k in keys[:2])
    codes_one, codes_two = one.codes(v), two.codes(v)
    cross = hamming_similarity(codes_one[a], codes_two[b])
    mi, mj, ni, nj = population
    mated = hamming_similarity(codes_one[mi], codes_two[mj])
    nonmated = hamming_similarity(codes_one[ni], codes_two[nj])
    same_photo = hamming_similarity(codes_one, codes_two)
    floor = d_sys(nonmated[: len(mated)], nonmated[len(mated) :])
    linking = lfw.scores(cross, same)
    within = hamming_similarity(codes_one[a], codes_one[b])

    agreement = 1.0 - np.mean(one.codes(reference) != codes_one, axis=1)
    return [
        "## FaceHash",
        "",
        f"Scheme `{scheme['version']}`: {scheme['levels']}-level dithered thermometer code of keyed random "
        f"rotations of the centred embedding, span ±{scheme['span']}σ (docs/FACEHASH.md: every scheme and length). "
        "Same person if the normalised Hamming distance is at most the threshold. FaceHash cells: mean over 3 keys "
        "(min–max). The last TAR column uses every same-person pair of different photos in lfw_dev "
        f"({len(mi)}) against {len(ni):,} random different-person pairs: the pairs file's 1,100 impostor pairs "
        "leave FAR 1e-3 to a single pair.",
        "",
        "| code | 10-fold accuracy | TAR at FAR 1e-3, pairs file | TAR at FAR 1e-3, all lfw_dev | threshold |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "### Across keys (1,024 bits)",
        "",
        "| | value |",
        "|---|---|",
        f"| same-person pairs, one key: mean distance | {1 - within[same].mean():.3f} |",
        f"| same-person pairs, two keys: mean distance | {1 - mated.mean():.3f} (σ {mated.std():.3f}) |",
        f"| different people, two keys: mean distance | {1 - nonmated.mean():.3f} (σ {nonmated.std():.3f}) |",
        f"| D↔sys, same-person pairs vs different people, two keys | {d_sys(mated, nonmated):.3f} |",
        f"| D↔sys, the same photo vs different people, two keys | {d_sys(same_photo, nonmated):.3f} |",
        f"| D↔sys of two samples of the same distribution (the estimator's floor at this size) | {floor:.3f} |",
        f"| attacker linking the pairs file across two keys, 10-fold accuracy | {100 * linking['acc']:.2f}% |",
        "",
        "D↔sys (Gomez-Barrero et al. 2018) from 30-bin histograms. What little linkage exists comes from a "
        "rotation-invariant quantity, the distance of the embedding from the population mean, which every code "
        "carries (see docs/THREAT_MODEL.md).",
        "",
        "### Across runtimes",
        "",
        f"Bits that agree between the FaceHash of the int8 model and of the float rebuild for the same photo "
        f"({len(agreement)} photos): median {100 * np.median(agreement):.2f}%, 1st percentile "
        f"{100 * np.percentile(agreement, 1):.2f}%, worst {100 * agreement.min():.2f}%.",
        "",
    ]
