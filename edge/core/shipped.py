"""The shipped model and calibration files: where they live, and a refusal of any file that does not match its
manifest's checksum (no vision code: the tracer's side and `status` read them too)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from edge.core.errors import ModelError


def models_dir() -> Path:
    """TRACEON_MODELS_DIR, else the checkout's models/, else the installed share/traceon-edge/models."""
    if env := os.environ.get("TRACEON_MODELS_DIR"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
        return checkout / "models"
    return Path(sys.prefix) / "share" / "traceon-edge" / "models"


DEFAULT_MODEL = "dlib_resnet_v1_int8"
FIX = "reinstall traceon-edge (or run `git checkout models/` in a source checkout) to restore the shipped files"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(directory: Path, entry: dict) -> Path:
    path = directory / entry["file"]
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; {FIX}")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise ModelError(
            f"model file {path} is damaged or was replaced: its sha256 is {actual[:16]}…, "
            f"the manifest expects {entry['sha256'][:16]}…; {FIX}"
        )
    return path


@dataclass(frozen=True)
class ModelFiles:
    manifest: dict
    model: Path
    landmarks: Path
    detector: Path  # YuNet's ONNX file, checked even when HOG alone is chosen: a swapped file is never left lying

    @property
    def model_id(self) -> str:
        """Name plus the start of the model's checksum: changes whenever the network does."""
        return f"{self.manifest['name']}@{self.manifest['model']['sha256'][:12]}"


def load_models(name: str = DEFAULT_MODEL, directory: Path | None = None) -> ModelFiles:
    directory = directory or models_dir()
    manifest_path = directory / f"{name}.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"model manifest {manifest_path} is missing; {FIX}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"model manifest {manifest_path} is not valid JSON ({e}); {FIX}") from None
    parts = [manifest.get(part) for part in ("model", "landmarks", "detector")]
    if not all(isinstance(entry, dict) for entry in parts):
        raise ModelError(f"model manifest {manifest_path} lacks the model, landmarks or detector entry; {FIX}")
    return ModelFiles(manifest, *(verified(directory, entry) for entry in parts))
