"""Photo traces in the console: said to be unavailable, with what to install, on a host without the vision parts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.data import ROOT, need_data

# A meta-path finder placed first hides the named top-level packages, as on a host without the `[unit]` extra.
WITHOUT = """
import importlib.abc, json, sys
hidden = set(sys.argv[1].split(","))
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Hide())
from edge.console import photos
ok, why = photos.available()
try:
    photos.hash_photos([("a.jpg", b"")], [])
    outcome = "hashed"
except photos.PhotosUnavailable as e:
    outcome = str(e)
print(json.dumps({"ok": ok, "why": why, "outcome": outcome}))
"""


def without(*packages: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, ",".join(packages)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("hidden", ["cv2", "dlib", "PIL", "ai_edge_litert,tflite_runtime"])
def test_without_a_vision_part_photo_traces_are_unavailable_and_say_what_to_install(hidden):
    answer = without(hidden)
    assert answer["ok"] is False
    assert "install the [unit] extra (pip install 'traceon-edge[unit]')" in answer["why"]
    named = "TensorFlow Lite runtime" if "litert" in hidden else f"{hidden} is missing"
    assert named in answer["why"]
    assert answer["outcome"] == answer["why"]  # hash_photos refuses with the same words, not an ImportError


def test_with_the_vision_parts_photo_traces_are_available_and_hash():
    from edge.console import photos
    from edge.core.facehash import Key

    assert photos.available() == (True, "")
    photo = need_data("faces", "amy_adams", "1.jpg")
    query = photos.hash_photos([(photo.name, photo.read_bytes())], [Key(bytes(32))])
    assert query.photos == 1 and list(query.codes) == [Key(bytes(32)).id]
    with pytest.raises(photos.PhotoError, match="not a photo"):
        photos.hash_photos([("x.jpg", b"plain text" * 10)], [Key(bytes(32))])


def test_importing_the_console_photos_module_loads_no_vision_part():
    vision = "{'cv2', 'dlib', 'PIL', 'ai_edge_litert'}"
    code = f"import sys; import edge.console.photos; print(sorted({vision} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
