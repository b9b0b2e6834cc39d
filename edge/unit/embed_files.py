"""`traceon-edge embed PATH...`: faces and embeddings of image and video files as JSON lines.

A developer's evaluation tool. The daemon never writes embeddings anywhere.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from edge.core import schemes
from edge.core.errors import FrameError, TraceonError
from edge.core.facehash import Key, load_scheme
from edge.core.keychain import Chain
from edge.unit import photo_query
from edge.unit.vision import Face, FacePipeline, VisionSettings
from edge.unit.vision.media import expand, is_video, read_image, video_frames

_pipeline: FacePipeline | None = None
_hasher = None  # edge.core.schemes.hasher of the chosen scheme, when a key is given
_raw = True


def _init_worker(settings: VisionSettings, key: Key | None, raw: bool, scheme: str) -> None:
    global _pipeline, _hasher, _raw
    _pipeline = FacePipeline(settings)
    _hasher = schemes.hasher(key, load_scheme(), scheme) if key else None
    _raw = raw


def _face_line(path: Path, face: Face, frame: int | None) -> dict:
    line: dict = {"path": str(path)}
    if frame is not None:
        line["frame"] = frame
    line["box"] = list(face.box)
    line["quality"] = face.quality.as_dict()
    if _hasher:
        line["facehash"] = str(_hasher.hash(face.embedding))
    if _raw:
        line["embedding"] = [round(float(v), 6) for v in face.embedding]
    return line


def _frame_lines(path: Path, frame_array, frame: int | None) -> list[dict]:
    faces = _pipeline.process(frame_array)
    if not faces:
        return [{"path": str(path), **({"frame": frame} if frame is not None else {}), "faces": 0}]
    return [_face_line(path, f, frame) for f in faces]


def describe_file(path: Path, every: int) -> list[dict]:
    """Every line one file gives: a line per face, a no-face line, or one error line. Never raises."""
    try:
        if not path.exists():
            raise FrameError("no such file or folder")
        if is_video(path):
            lines = []
            for index, frame in video_frames(path, every):
                lines += _frame_lines(path, frame, index)
            if not lines:
                raise FrameError("the video holds no readable frames")
            return lines
        return _frame_lines(path, read_image(path), None)
    except (TraceonError, OSError) as e:
        return [{"path": str(path), "error": str(e)}]
    except Exception as e:  # a decoder's own exception must not end a run over thousands of files
        return [{"path": str(path), "error": f"unexpected {type(e).__name__}: {e}"}]


def _describe(job: tuple[Path, int]) -> list[dict]:
    return describe_file(*job)


def run(
    paths: list[Path],
    settings: VisionSettings,
    every: int = 1,
    jobs: int = 1,
    out=sys.stdout,
    key: Key | None = None,
    raw_embeddings: bool = False,
    scheme: str = "fh2",
) -> int:
    """Write the JSON lines for all files in input order; 1 if any file failed, else 0.

    With a key each face line carries its FaceHash of `scheme`, and embeddings only if `raw_embeddings`."""
    raw = raw_embeddings or key is None
    work = [(p, every) for p in expand(paths)]
    failed = False
    results: Iterator[list[dict]]
    if jobs > 1 and len(work) > 1:
        pool = multiprocessing.get_context("spawn").Pool(jobs, _init_worker, (settings, key, raw, scheme))
        results = pool.imap(_describe, work)
    else:
        pool = None
        _init_worker(settings, key, raw, scheme)
        results = map(_describe, work)
    try:
        for lines in results:
            for line in lines:
                failed |= "error" in line
                out.write(json.dumps(line) + "\n")
            out.flush()
    finally:
        if pool:
            pool.close()
            pool.join()
    return 1 if failed else 0


def one_person(paths: list[Path], settings: VisionSettings, key: Key, out=sys.stdout, scheme: str = "fh2") -> int:
    """One FaceHash of `scheme` from several photos of one person: their quality-weighted mean embedding, as a
    burst's.

    Each photo gives its largest face; photo_query.one_person (shared with the console's photo query) chooses
    the faces to trust and averages them, leaving out and naming any photo whose face does not match."""
    chosen, said = _mean(paths, settings, out)
    if chosen is None:
        return 1
    code = str(schemes.hasher(key, load_scheme(), scheme).hash(chosen.embedding))
    trace = f"traceon-edge trace {code} --query-photos {len(chosen.used)} --db DB"
    out.write(json.dumps({"facehash": code, **said, "trace": trace}) + "\n")
    return 0


def one_person_epochs(
    paths: list[Path],
    settings: VisionSettings,
    chain: Chain,
    since: str,
    since_s: float,
    out=sys.stdout,
    scheme: str = "fh2",
    now: float | None = None,
) -> int:
    """The person's FaceHash for every epoch of the window, from max(the chain's epoch, the epoch of now − since)
    to now's: one entry per epoch (its name, key id, FaceHash) and a `trace` command line with all of them.

    Epochs before the chain's own are gone (the tracer's chain moved past them with retention): said, never made."""
    now = time.time() if now is None else now
    chosen, said = _mean(paths, settings, out)
    if chosen is None:
        return 1
    model = load_scheme()
    entries = []
    for epoch, key in chain.keys(*chain.window(since_s, now)):
        code = str(schemes.hasher(key, model, scheme).hash(chosen.embedding))
        entries.append({"epoch": chain.name(epoch), "key_id": key.id, "facehash": code})
    codes = " ".join(e["facehash"] for e in entries)
    trace = f"traceon-edge trace {codes} --since {since} --query-photos {len(chosen.used)} --db DB"
    out.write(json.dumps({"facehashes": entries, "gone": chain.gone(since_s, now), **said, "trace": trace}) + "\n")
    return 0


def _mean(paths: list[Path], settings: VisionSettings, out) -> tuple[photo_query.OnePerson | None, dict]:
    """The photos' one person (photo_query.one_person) and what to say of the photos (used, left out with why);
    (None, …) after writing the error line when no photo gave a face to trust."""
    pipeline = FacePipeline(settings)
    faces, left_out = [], []
    for path in expand(paths):
        try:
            found = pipeline.process(read_image(path))
        except (TraceonError, OSError) as e:
            left_out.append({"path": str(path), "why": str(e)})
            continue
        if not found:
            left_out.append({"path": str(path), "why": "no face found"})
            continue
        faces.append((str(path), max(found, key=lambda f: f.quality.size)))
    chosen = photo_query.one_person(faces, pipeline.threshold)
    left_out += [{"path": name, "why": why} for name, why in chosen.left_out]
    if chosen.embedding is None:
        out.write(json.dumps({"error": "no photo gave a face to trust", "left_out": left_out}) + "\n")
        return None, {}
    return chosen, {"photos": len(chosen.used), "used": [name for name, _ in chosen.used], "left_out": left_out}
