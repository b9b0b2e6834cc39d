"""One root for the errors this package raises on purpose, with a base per area.

Leaf errors also inherit the builtin they resemble, so callers that only know Python's own
exceptions still catch them. Every message is written for the technician who reads it.
"""


class TraceonError(Exception):
    """Root of every error traceon-edge raises on purpose."""


class ModelError(TraceonError, RuntimeError):
    """A model file is missing, damaged or does not match its manifest."""


class FrameError(TraceonError, ValueError):
    """A frame or image the vision pipeline cannot use."""


class RuntimeMissingError(TraceonError, ImportError):
    """No TensorFlow Lite runtime could be imported."""
