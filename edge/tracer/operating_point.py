"""The operating point of a trace: which Hamming distance counts as a sighting, decided by false sightings.

A trace is a 1:N search: each stored row is one more chance of a stranger within the threshold. So
the threshold is chosen from the false-accept rate (FAR) per row that a budget of expected false
sightings allows over the rows searched, using curves calibrated on lfw_dev
(tools/calibrate_trace.py → models/facehash_operating.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from edge.core.errors import OperatingError
from edge.core.facehash import MAX_QUERY_PHOTOS
from edge.core.shipped import models_dir

FILE = "facehash_operating.json"
MAX_FAR = 1e-2  # no trace accepts more than 1 % of strangers per row, however few rows it searches


@dataclass(frozen=True)
class Curve:
    far: tuple[float, ...]  # FAR within d bits, d = 0 … len - 1
    tar: tuple[float, ...]
    measured_from: int  # far[d] for smaller d is extrapolated

    @classmethod
    def from_json(cls, data: dict) -> Curve:
        return cls(tuple(data["far"]), tuple(data["tar"]), int(data["measured_from"]))

    def distance_at(self, far: float) -> int:
        """The largest distance whose FAR is at most `far` (capped at MAX_FAR's); -1 if none is that strict."""
        within = [d for d, f in enumerate(self.far) if f <= far]
        return within[-1] if within else -1


@cache
def curves() -> dict:
    path = models_dir() / FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise OperatingError(f"{path} is missing; reinstall traceon-edge to restore it") from None


def curve(bits: int, photos: int) -> Curve:
    per_length = curves()["lengths"].get(str(bits))
    if per_length is None:
        lengths = ", ".join(curves()["lengths"])
        raise OperatingError(f"no calibration for {bits}-bit FaceHashes (calibrated: {lengths} bits)")
    if not 1 <= photos <= MAX_QUERY_PHOTOS:
        raise OperatingError(f"queries are calibrated for 1 to {MAX_QUERY_PHOTOS} photos, not {photos}")
    return Curve.from_json(per_length[str(photos)])


@dataclass(frozen=True)
class OperatingPoint:
    bits: int
    photos: int  # photos behind each query FaceHash (their mean embedding)
    codes: int  # query FaceHashes; a row counts if it is near any of them
    rows: int  # rows searched
    distance: int  # a sighting is within this many bits (-1: nothing can be accepted)
    far: float  # false-accept rate per row, all query codes together (union bound)
    tar: float  # share of true sightings found (for several codes: at least this)
    extrapolated: bool  # the FAR comes from the fitted tail, not from measured pairs
    capped: bool  # the budget allowed more than MAX_FAR, so MAX_FAR's distance is used

    @property
    def expected_false(self) -> float:
        return self.far * self.rows

    @property
    def fraction(self) -> float:
        return max(self.distance, 0) / self.bits


def choose(
    bits: int, rows: int, *, photos: int = 1, codes: int = 1, max_false: float = 1.0, far: float | None = None
) -> OperatingPoint:
    """The operating point for `rows` rows: FAR per row = max_false / rows (or `far`), shared by the codes."""
    c = curve(bits, photos)
    budget = far if far is not None else (max_false / rows if rows else MAX_FAR)
    per_code = min(budget, MAX_FAR) / codes
    distance = c.distance_at(per_code)
    row_far = codes * c.far[distance] if distance >= 0 else 0.0
    return OperatingPoint(
        bits=bits,
        photos=photos,
        codes=codes,
        rows=rows,
        distance=distance,
        far=row_far,
        tar=c.tar[distance] if distance >= 0 else 0.0,
        extrapolated=0 <= distance < c.measured_from,
        capped=budget > MAX_FAR,
    )
