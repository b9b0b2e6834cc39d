"""The operating point of a trace: which distance counts as a sighting, decided by false sightings.

A trace is a 1:N search: each stored row is one more chance of a stranger within the threshold. So
the threshold is chosen from the false-accept rate (FAR) per row that a budget of expected false
sightings allows over the rows searched, using curves calibrated on lfw_dev (tools/calibrate_trace.py →
models/facehash_operating.json for fh1, in Hamming bits; models/facehash_operating_fh2.json for fh2, in
code units of Euclidean distance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from edge.core.errors import OperatingError
from edge.core.facehash import MAX_QUERY_PHOTOS
from edge.core.shipped import models_dir

FILES = {"fh1": "facehash_operating.json", "fh2": "facehash_operating_fh2.json"}
FILE = FILES["fh1"]
MAX_FAR = 1e-2  # no trace accepts more than 1 % of strangers per row, however few rows it searches


@dataclass(frozen=True)
class Curve:
    far: tuple[float, ...]  # FAR within distance d (fh1: bits; fh2: code units), d = 0 … len - 1
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
def curves(scheme: str = "fh1") -> dict:
    if scheme not in FILES:
        raise OperatingError(f"no calibration for FaceHash scheme {scheme!r} (calibrated: {', '.join(FILES)})")
    path = models_dir() / FILES[scheme]
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise OperatingError(f"{path} is missing; reinstall traceon-edge to restore it") from None


def curve(bits: int, photos: int, scheme: str = "fh1") -> Curve:
    calibrated = curves(scheme)
    per_length = calibrated["lengths"].get(str(bits))
    if per_length is None:
        lengths = ", ".join(calibrated["lengths"])
        raise OperatingError(f"no calibration for {bits}-bit {scheme} FaceHashes (calibrated: {lengths} bits)")
    if not 1 <= photos <= MAX_QUERY_PHOTOS:
        raise OperatingError(f"queries are calibrated for 1 to {MAX_QUERY_PHOTOS} photos, not {photos}")
    return Curve.from_json(per_length[str(photos)])


@dataclass(frozen=True)
class OperatingPoint:
    bits: int
    photos: int  # photos behind each query FaceHash (their mean embedding)
    codes: int  # query FaceHashes; a row counts if it is near any of them
    rows: int  # rows searched
    distance: int  # a sighting is within this distance, fh1: bits, fh2: code units (-1: nothing can be accepted)
    far: float  # false-accept rate per row, all query codes together (union bound)
    tar: float  # share of true sightings found (for several codes: at least this)
    extrapolated: bool  # the FAR comes from the fitted tail, not from measured pairs
    capped: bool  # the budget allowed more than MAX_FAR, so MAX_FAR's distance is used
    scheme: str = "fh1"

    @property
    def expected_false(self) -> float:
        return self.far * self.rows

    @property
    def fraction(self) -> float:
        """fh1: the distance as a share of the bits (fh2's distance is no share of anything)."""
        return max(self.distance, 0) / self.bits

    @property
    def within(self) -> str:
        """The threshold in words: "within 125 bits" or "within distance 275 (fh2 code units)"."""
        if self.scheme == "fh1":
            return f"within {self.distance} bits"
        return f"within distance {self.distance} ({self.scheme} code units)"


def choose(
    bits: int,
    rows: int,
    *,
    photos: int = 1,
    codes: int = 1,
    max_false: float = 1.0,
    far: float | None = None,
    scheme: str = "fh1",
) -> OperatingPoint:
    """The operating point for `rows` rows: FAR per row = max_false / rows (or `far`), shared by the codes."""
    c = curve(bits, photos, scheme)
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
        scheme=scheme,
    )
