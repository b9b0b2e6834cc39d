"""Group the faces of one burst into persons, and aggregate each person's embedding.

A face joins a person when its embedding matches the person's (cosine at or above the model's
threshold). A face too poor to trust has no embedding worth comparing: it joins the person whose box it
continues from the previous frames (so does a trusted face whose track has no trusted view yet). A trusted
face never joins a trusted person by position alone: two people whose boxes overlap in consecutive frames
(one passing in front of the other, or stepping where the other just stood) are often within 0.1 of the
threshold (Obama and Biden: 0.81 against 0.905), so overlap cannot vouch for them. Embedding matches are
always served before position-only ones.

Several views of a person average into one embedding weighted by quality: hashing once per person is
more stable than hashing any single frame. Faces too small or too blurred to trust still count (and
still continue a person's track) but do not shape the embedding; a person seen only in such faces gets
no FaceHash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.unit.vision import Face
from edge.unit.vision.detect import iou

CONTINUITY_IOU = 0.4  # box overlap with the previous frame that counts as the same track
CONTINUITY_GAP = 2  # frames a track may miss (a blink of the detector) and still continue


@dataclass(frozen=True)
class TrustRules:
    min_face_size: int = 60  # px; smaller faces are enlarged 2.5× into the 150 px chip
    min_sharpness: float = 10.0  # variance of the chip Laplacian: 0.5th percentile of lfw_dev; sample photos 50–1900
    continuity: bool = True  # off for a folder of photos: unrelated pictures, a box in one says nothing of the next
    # A view that passes each gate only just, on several at once, is still weak: 1.2% of lfw_dev's trusted faces
    # weigh under 0.05, and their same-person pairs match 91% against 99.2%. The clip has one (frame 212, a
    # blurred shot change): it hashes 0.30 from Lin-Manuel Miranda, his 129 other views 0.243 at most.
    min_weight: float = 0.05

    def trusts(self, face: Face) -> bool:
        q = face.quality
        passes = q.size >= self.min_face_size and q.sharpness >= self.min_sharpness and not q.profile
        return passes and weight(face) >= self.min_weight


def weight(face: Face) -> float:
    """How much a view counts: frontal, large and sharp views count most."""
    q = face.quality
    return max(q.frontalness, 0.05) * min(1.0, q.size / 150) * min(1.0, q.sharpness / 100)


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
        return self.embedding_of_best(None)

    def embedding_of_best(self, best: int | None) -> np.ndarray | None:
        """The embedding from only the `best` heaviest trusted views (all when None): what embedding only the
        best K faces of a person would give (measured in docs/PERFORMANCE.md, not used by the unit)."""
        views = sorted(((weight(f), f.embedding) for _, f, ok in self.sightings if ok), key=lambda v: -v[0])[:best]
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
) -> tuple[int, float] | None:
    """(1, similarity + overlap) for an embedding match; (0, overlap) for a face continuing a track where one of
    the two has no trusted embedding to compare."""
    last_frame, last_face = person.last
    overlap = iou(face.box, last_face.box) if rules.continuity and index - last_frame <= CONTINUITY_GAP else 0.0
    if rules.trusts(face) and mean is not None:
        similarity = float(face.embedding @ mean)
        return (1, similarity + overlap) if similarity >= threshold else None
    return (0, overlap) if overlap >= CONTINUITY_IOU else None  # nothing trusted on either side to compare
