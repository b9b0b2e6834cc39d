"""traceon-edge: the checkpoint camera daemon. Faces stay on the device; only FaceHashes leave it."""

__version__ = "0.1.0"
