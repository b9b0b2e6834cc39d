"""Frames in, faces with quality numbers and 128-d embeddings out."""

from edge.unit.vision.pipeline import Face, FacePipeline, VisionSettings

__all__ = ["Face", "FacePipeline", "VisionSettings"]
