from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def need_data(*parts: str) -> Path:
    """The real photos; absent in a clone elsewhere (a skip), never in CI (a failure: CI has ../shared)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        why = f"{path} is absent: the real photos live in ../shared/data beside the checkout"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}, and CI=true: CI must run every test on them")
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def pipeline():
    from edge.unit.vision import FacePipeline

    return FacePipeline()


@pytest.fixture(scope="session")
def embeddings(pipeline):
    """The int8 embedding of the face in each sample photo of faces/, by 'person/n.ext'."""
    from edge.unit.vision.media import read_image

    folder = need_data("faces")
    return {
        f"{p.parent.name}/{p.name}": pipeline.process(read_image(p))[0].embedding for p in sorted(folder.glob("*/*"))
    }


@pytest.fixture(scope="session")
def dlib_float():
    """dlib's own float network (from face-recognition-models): the reference for the int8 model."""
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("face-recognition-models is not installed (pip install -e '.[test]')")
    models = Path(spec.submodule_search_locations[0]) / "models"
    return dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))


# --- a real mosquitto broker and PostgreSQL on free loopback ports (tools/servers.py) ------------------

import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from servers import Broker, Postgres, free_port  # noqa: E402


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """Collects every message under a topic filter, with a persistent session (QoS 1 survives outages)."""

    def __init__(self, port: int, topic: str = "#", client_id: str = "test-subscriber"):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = lambda c, u, f, r, p: (c.subscribe(topic, qos=1), None)[1]
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert self._ready.wait(10), "the test subscriber could not subscribe"

    def _message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def wait_for(self, condition, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres(postgres_server) -> str:
    """The URL of a fresh, empty database."""
    return postgres_server.new_database()


def make_certificates(directory: Path) -> None:
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate, with openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=traceon test CA")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn in (("server", "localhost"), ("client", "unit-d1")):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={cn}",
        )
        extra = ["-extfile", "san.ext"] if name == "server" else []
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", *extra)  # fmt: skip


def tls_listener(directory: Path, require_certificate: bool) -> tuple[int, str]:
    """A TLS listener's port and its mosquitto lines, with the certificates of make_certificates."""
    port = free_port()
    lines = (
        f"listener {port} 127.0.0.1\ncafile {directory / 'ca.crt'}\ncertfile {directory / 'server.crt'}\n"
        f"keyfile {directory / 'server.key'}\nrequire_certificate {str(require_certificate).lower()}\n"
    )
    return port, lines


def wait_until(condition, timeout: float = 10) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def passing_close(frames: int = 20) -> tuple[list, list[dict[str, int]]]:
    """Two people walking past each other at one doorway, composed from the sample photos (no recording shows
    it): Obama from the left, Biden from the right, heads at the same height. Each hides the other as they
    pass, Obama first and then Biden, so one steps into the box the other held a frame before.

    Returns the frames and, for each, where each visible head's centre is (x): the truth to check against."""
    import cv2
    import numpy as np

    from edge.unit.vision import FacePipeline, VisionSettings
    from edge.unit.vision.media import read_image

    pipeline = FacePipeline(VisionSettings(detector="hog"))

    def head(person: str) -> np.ndarray:
        photo = read_image(need_data("faces", person, "1.jpg"))
        (face,) = pipeline.process(photo)
        left, top, right, bottom = face.box
        side = right - left
        crop = photo[max(0, top - side // 2) : bottom + side // 3, max(0, left - side // 3) : right + side // 3]
        return cv2.resize(crop, None, fx=260 / crop.shape[1], fy=260 / crop.shape[1], interpolation=cv2.INTER_AREA)

    obama, biden = head("barack_obama"), head("joe_biden")
    noise = np.random.default_rng(3).integers(60, 200, (720, 1280, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 8)
    span = 1280 - 300
    composed, truth = [], []
    for t in range(frames):
        frame = background.copy()
        xa, xb = 40 + span * t // (frames - 1), 1280 - 300 - span * t // (frames - 1)
        behind_first = [("joe_biden", biden, xb), ("barack_obama", obama, xa)]
        if t >= frames // 2:
            behind_first.reverse()
        for _, head_image, x in behind_first:
            frame[150 : 150 + head_image.shape[0], x : x + head_image.shape[1]] = head_image
        centres = {name: x + 130 for name, _, x in behind_first}
        if abs(xa - xb) < 150:  # the one in front hides the other's face
            centres = {behind_first[1][0]: centres[behind_first[1][0]]}
        composed.append(frame)
        truth.append(centres)
    return composed, truth
