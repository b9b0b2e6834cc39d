"""Group the faces of one burst into persons, and aggregate each person's embedding.

A face joins a person when its embedding matches the person's (cosine at or above the model's
threshold), or when it continues the person's box from the previous frame and does not contradict the
person's embedding. Several views of a person average into one embedding weighted by quality: hashing
once per person is more stable than hashing any single frame. Faces too small or too blurred to trust
still count (and still continue a person's track) but do not shape the embedding; a person seen only
in such faces gets no FaceHash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.vision import Face
from edge.vision.detect import Box

CONTINUITY_IOU = 0.4  # box overlap with the previous frame that counts as the same track
CONTINUITY_SLACK = 0.1  # a continuing track may sit this far below the match threshold
CONTINUITY_GAP = 2  # frames a track may miss (a blink of the detector) and still continue


@dataclass(frozen=True)
class TrustRules:
    min_face_size: int = 60  # px; smaller faces are enlarged 2.5× into the 150 px chip
    min_sharpness: float = 10.0  # variance of the chip Laplacian: 0.5th percentile of lfw_dev; sample photos 50–1900
    continuity: bool = True  # off for a folder of photos: unrelated pictures, a box in one says nothing of the next

    def trusts(self, face: Face) -> bool:
        return face.quality.size >= self.min_face_size and face.quality.sharpness >= self.min_sharpness


def weight(face: Face) -> float:
    """How much a view counts: frontal, large and sharp views count most."""
    q = face.quality
    return max(q.frontalness, 0.05) * min(1.0, q.size / 150) * min(1.0, q.sharpness / 100)


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@dataclass
class Person:
    sightings: list[tuple[int, Face, bool]] = field(default_factory=list)  # frame, face, trusted

    @property
    def frames(self) -> list[int]:
        return sorted({frame for frame, _, _ in self.sightings})

    @property
    def last(self) -> tuple[int, Face]:
        frame, face, _ = self.sightings[-1]
        return frame, face

    @property
    def embedding(self) -> np.ndarray | None:
        """Quality-weighted mean of the trusted views, L2-normalised; None without a trusted view."""
        views = [(weight(f), f.embedding) for _, f, ok in self.sightings if ok]
        if not views:
            return None
        total = sum(w * e for w, e in views) / max(sum(w for w, _ in views), 1e-9)
        return total / np.linalg.norm(total)

    @property
    def hashable(self) -> bool:
        return any(ok for _, _, ok in self.sightings)

    def quality(self) -> dict:
        faces = [f for _, f, ok in self.sightings if ok] or [f for _, f, _ in self.sightings]
        return {
            "views": len(self.sightings),
            "size": max(f.quality.size for f in faces),
            "frontalness": round(max(f.quality.frontalness for f in faces), 3),
            "sharpness": round(max(f.quality.sharpness for f in faces), 1),
        }


def group(frames: list[list[Face]], threshold: float, rules: TrustRules | None = None) -> list[Person]:
    """Persons of a burst from the embedded faces of each of its frames, in order of first sighting."""
    rules = rules or TrustRules()
    persons: list[Person] = []
    for index, faces in enumerate(frames):
        candidates = []
        means = [person.embedding for person in persons]
        for fi, face in enumerate(faces):
            for pi, person in enumerate(persons):
                score = _match(person, means[pi], face, index, threshold, rules)
                if score is not None:
                    candidates.append((score, pi, fi))
        taken_persons, taken_faces = set(), set()
        for _, pi, fi in sorted(candidates, reverse=True):
            if pi not in taken_persons and fi not in taken_faces:
                persons[pi].sightings.append((index, faces[fi], rules.trusts(faces[fi])))
                taken_persons.add(pi)
                taken_faces.add(fi)
        for fi, face in enumerate(faces):
            if fi not in taken_faces:
                persons.append(Person([(index, face, rules.trusts(face))]))
    return persons


def _match(
    person: Person, mean: np.ndarray | None, face: Face, index: int, threshold: float, rules: TrustRules
) -> float | None:
    last_frame, last_face = person.last
    overlap = iou(face.box, last_face.box) if rules.continuity and index - last_frame <= CONTINUITY_GAP else 0.0
    similarity = float(face.embedding @ mean) if mean is not None and rules.trusts(face) else None
    if similarity is not None and similarity >= threshold:
        return similarity + overlap
    if overlap >= CONTINUITY_IOU and (similarity is None or similarity >= threshold - CONTINUITY_SLACK):
        return overlap
    return None
