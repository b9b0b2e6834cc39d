"""Config files for a unit under test."""

from __future__ import annotations

from pathlib import Path

from edge.core import facehash
from support.data import need_data

BASE = """
unit: {site: s1, checkpoint: door, device: d1}
trigger: {kind: interval, seconds: 5}
source: {kind: images, path: IMAGES}
facehash: {key_file: KEY}
mqtt: {port: 1883}
outbox: {path: OUTBOX}
"""


def config_text(files: Path, extra: str = "", drop: str = "") -> str:
    """The smallest valid config, its files in `files` (the config tests' fixture), lines starting with `drop`
    left out and `extra` added."""
    body = BASE.replace("IMAGES", str(files / "images")).replace("KEY", str(files / "unit.key"))
    body = body.replace("OUTBOX", str(files / "outbox.sqlite"))
    lines = [line for line in body.splitlines() if not (drop and line.startswith(drop))]
    return "\n".join(lines) + "\n" + extra


def write_config(
    tmp_path,
    port,
    trigger: str,
    source: str,
    burst="{frames: 10, duration: 1.0, cooldown: 0}",
    upsample=1,
    name="unit.yaml",
    scheme: str | None = None,
):
    """Unit s1/door/d1 reporting to the broker on `port` (health every second), its key and outbox in tmp_path;
    FaceHashes of `scheme` (None: the default)."""
    key = tmp_path / "unit.key"
    if not key.exists():
        facehash.write_key_file(key)
    path = tmp_path / name
    hashing = f"{{key_file: {key}" + (f", scheme: {scheme}}}" if scheme else "}")
    path.write_text(
        f"unit: {{site: s1, checkpoint: door, device: d1}}\ntrigger: {trigger}\nsource: {source}\n"
        f"burst: {burst}\nvision: {{upsample: {upsample}, threads: 2}}\nfacehash: {hashing}\n"
        f"mqtt: {{port: {port}, keepalive: 5, health_every: 1}}\noutbox: {{path: {tmp_path / 'outbox.sqlite'}}}\n"
    )
    return path


def faces_folder(tmp_path):
    """A folder of two real photos: Obama's and Biden's."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for photo in ("barack_obama/1.jpg", "joe_biden/1.jpg"):
        (folder / photo.replace("/", "_")).write_bytes(need_data("faces", *photo.split("/")).read_bytes())
    return folder


def photos_on_demand(tmp_path, port, burst):
    """A unit whose camera is a folder of two real photos, bursting only when asked."""
    source = f"{{kind: images, path: {faces_folder(tmp_path)}, loop: true}}"
    return write_config(tmp_path, port, "{kind: manual}", source, burst=burst, upsample=0)


def unit_config(tmp_path: Path, port: int, outbox: Path | None = None, interval: float = 0.5) -> Path:
    """A unit bursting every `interval` seconds, one frame a burst, from the two photos of faces_folder."""
    path = write_config(
        tmp_path,
        port,
        f"{{kind: interval, seconds: {interval}}}",
        f"{{kind: images, path: {faces_folder(tmp_path)}, loop: true}}",
        burst="{frames: 1, duration: 0.05, cooldown: 0}",
        upsample=0,
    )
    if outbox is not None:
        path.write_text(path.read_text().replace(str(tmp_path / "outbox.sqlite"), str(outbox)))
    return path
