"""Rows of a visit grouped into people: greedy leader clustering, as the trace always did, without comparing
every row with every contact (issue 19: one unit's 10,000 random codes made a trace take 21 s).

The rule: rows are taken in order; a row joins the first group whose first row (its leader) is within
`link` bits, or leads a new group. Equal codes are one row for this. The work is finding, for each row,
the earlier leaders within `link`:

- up to EXACT distinct codes, every pair is compared (NumPy, a block at a time): exactly the old rule;
- above that, candidates come from locality-sensitive hashing: each of a number of tables keys a code by
  SAMPLED of its bits, two whole bytes at fixed positions (so a trace is repeatable); two codes within `link`
  bits share a key in
  some table with probability at least 1 - MISS, two random codes (about half their bits apart) share
  one in a table with probability 2^-SAMPLED. Candidates are then compared exactly, so two people are
  never merged; a missed pair splits one person into two lines, the way the rule errs when in doubt.

fh2 codes (Euclidean distance in code units) are compared pair by pair at any count: a block of rows
against all by one matrix product, about a second for 10,000 distinct codes.

Pigeonhole on exact chunks would make the search exact, but at the calibrated lengths the link is about
16 % of the bits (165 of 1024): link + 1 chunks are 6 bits long, and random codes share one of them so
often that every row is a candidate of every other.
"""

from __future__ import annotations

import math

import numpy as np

EXACT = 500  # distinct codes compared pair by pair (250,000 pairs: hashing is faster above)
SAMPLED = 16  # bits per hash key
MISS = 1e-3  # at most this chance that two codes exactly `link` bits apart share no key
PER_BUCKET = 3  # a code is compared with the first few codes of each of its buckets (earliest first)
SEED = 19


def groups(codes: np.ndarray, link: int, scheme: str = "fh1") -> np.ndarray:
    """For each row of `codes` (N × bytes, uint8, in the visit's order) its group, numbered 0, 1, …
    in the order the groups' leaders come. `link`: fh1 bits, fh2 code units."""
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    codes = np.ascontiguousarray(codes, np.uint8)
    _, first, inverse = np.unique(codes.view(f"V{codes.shape[1]}").ravel(), return_index=True, return_inverse=True)
    order = np.argsort(first)  # distinct codes in the order they first come
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    distinct = codes[first[order]]
    if scheme == "fh2":
        pairs = euclidean_pairs(distinct, link)
    else:
        pairs = exact_pairs(distinct, link) if len(distinct) <= EXACT else hashed_pairs(distinct, link)
    leader = leaders(len(distinct), pairs)
    number = np.cumsum(leader == np.arange(len(distinct))) - 1  # each leader's group number
    return number[leader][rank[inverse.ravel()]]


def words(codes: np.ndarray) -> np.ndarray:
    return codes.view(np.uint64) if codes.shape[1] % 8 == 0 else codes


def exact_pairs(codes: np.ndarray, link: int) -> np.ndarray:
    """Every pair (a, b), a < b, within `link` bits."""
    w, found = words(codes), []
    for start in range(0, len(w), 256):
        block = w[start : start + 256]
        d = np.bitwise_count(block[:, None, :] ^ w[None, :, :]).sum(-1, dtype=np.int32)
        a, b = np.nonzero(d <= link)
        a += start
        found.append(np.stack([a[a < b], b[a < b]], 1))
    return np.concatenate(found)


def euclidean_pairs(codes: np.ndarray, link: int, block: int = 1024) -> np.ndarray:
    """Every pair (a, b), a < b, of fh2 codes within `link` code units (rounded, as fh2.distances rounds)."""
    x = codes.view(np.int8).astype(np.float32)
    norms, found = (x * x).sum(1), [np.zeros((0, 2), np.int64)]
    for start in range(0, len(x), block):
        part = x[start : start + block]
        squared = norms[start : start + block, None] + norms[None, :] - 2.0 * (part @ x.T)
        a, b = np.nonzero(np.rint(np.sqrt(np.maximum(squared, 0.0))) <= link)
        a += start
        found.append(np.stack([a[a < b], b[a < b]], 1))
    return np.concatenate(found)


def tables(size: int, bits: int, link: int) -> np.ndarray:
    """The sampled byte positions (of `size` bytes): TABLES × 2, as many tables as MISS asks at this link."""
    near = (1 - link / bits) ** SAMPLED  # chance that one table keys two codes `link` bits apart alike
    count = math.ceil(math.log(MISS) / math.log1p(-near)) if near < 1 else 1
    rng = np.random.default_rng(SEED)
    return np.stack([rng.choice(size, SAMPLED // 8, replace=False) for _ in range(count)])


def hashed_pairs(codes: np.ndarray, link: int) -> np.ndarray:
    """Pairs (a, b), a < b, within `link` bits that share a key in some table (see the module's doc)."""
    positions = tables(codes.shape[1], codes.shape[1] * 8, link)
    # a key is two whole bytes: as likely to survive `link` flipped bits as 16 single bits, and one gather
    keys = np.ascontiguousarray(codes[:, positions.ravel()].reshape(len(codes), -1, 2).transpose(1, 0, 2))
    keys = keys.view(np.uint16)[..., 0]  # tables × codes
    w, found, index = words(codes), [], np.arange(len(codes))
    for key in keys:
        order = np.argsort(key, kind="stable")  # a radix sort; within a bucket, the earliest code first
        ordered = key[order]
        opens = np.ones(len(order), bool)
        opens[1:] = ordered[1:] != ordered[:-1]
        start = np.maximum.accumulate(np.where(opens, index, 0))
        place = index - start
        for k in range(PER_BUCKET):
            later = np.flatnonzero(place > k)
            if len(later) == 0:
                break
            a, b = order[start[later] + k], order[later]
            apart = np.bitwise_count(np.take(w, a, axis=0) ^ np.take(w, b, axis=0)).sum(-1, dtype=np.int32)
            near = apart <= link
            found.append(np.stack([a[near], b[near]], 1))
    pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
    once = np.unique(pairs[:, 0] * len(codes) + pairs[:, 1])  # a pair found by several tables
    return np.stack([once // len(codes), once % len(codes)], 1)


def leaders(count: int, pairs: np.ndarray) -> np.ndarray:
    """Each code's leader: the earliest leader within reach among the pairs, or itself."""
    leader = np.arange(count)
    if len(pairs) == 0:
        return leader
    pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]  # by the later code, then the earlier
    ends = np.flatnonzero(np.r_[pairs[1:, 1] != pairs[:-1, 1], True]) + 1
    begins = np.r_[0, ends[:-1]]
    leads = np.ones(count, bool)
    for b, lo, hi in zip(pairs[begins, 1].tolist(), begins.tolist(), ends.tolist(), strict=True):
        earlier = pairs[lo:hi, 0]
        heads = earlier[leads[earlier]]
        if len(heads):
            leads[b] = False
            leader[b] = heads[0]
    return leader
