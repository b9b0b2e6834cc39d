"""Invalid configurations: a table of snippet → the field named and the reason, and exit status 78."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.data import ROOT
from support.unit_config import config_text

from edge.core import facehash
from edge.unit import config


def test_the_base_config_is_valid(files):
    cfg = config.parse(config_text(files))
    assert cfg.trigger.kind == "interval"
    assert (cfg.facehash.scheme, cfg.facehash.bits) == ("fh2", 1024)
    key = f"key_file: {files / 'unit.key'}"
    fh1 = config.parse(config_text(files, f"facehash: {{{key}, scheme: fh1, bits: 512}}\n", "facehash:"))
    assert (fh1.facehash.scheme, fh1.facehash.bits) == ("fh1", 512)  # other lengths are fh1's


CASES = [
    ("unknown key", "burst: {frames: 5, framez: 3}\n", "", "burst.framez", "unknown key"),
    ("unknown section", "camera: {kind: webcam}\n", "", "camera", "unknown key"),
    ("wrong type", "burst: {frames: many}\n", "", "burst.frames", "valid integer"),
    ("out of range", "vision: {upsample: 9}\n", "", "vision.upsample", "less than or equal to 3"),
    ("bad detector kind", "vision: {detector: {kind: mtcnn}}\n", "", "vision.detector", "expected tags"),
    (
        "hog has no score",
        "vision: {detector: {kind: hog, min_score: 0.5}}\n",
        "",
        "vision.detector.min_score",
        "unknown key",
    ),
    (
        "score out of range",
        "vision: {detector: {kind: yunet, min_score: 1.5}}\n",
        "",
        "vision.detector.min_score",
        "less than or equal to 0.99",
    ),
    ("bad port", "mqtt: {port: 70000}\n", "mqtt:", "mqtt.port", "less than or equal to 65535"),
    ("bad bits", "facehash: {key_file: /nonexistent, bits: 1000}\n", "facehash:", "facehash.bits", "1024"),
    (
        "bad scheme",
        "facehash: {key_file: /nonexistent, scheme: fh3}\n",
        "facehash:",
        "facehash.scheme",
        "'fh1' or 'fh2'",
    ),
    (
        "fh2 of another length",
        "facehash: {key_file: /nonexistent, bits: 512}\n",
        "facehash:",
        "facehash.bits",
        "other than 1024 are for scheme fh1 only",
    ),
    ("bad trigger kind", "trigger: {kind: laser}\n", "trigger:", "trigger", "does not match any of the expected tags"),
    ("pir key under interval", "trigger: {kind: interval, pin: 4}\n", "trigger:", "trigger.pin", "unknown key"),
    ("missing section", "", "unit:", "unit", "Field required"),
    ("bad name", "unit: {site: 'a b', checkpoint: door, device: d1}\n", "unit:", "unit.site", "pattern"),
]


@pytest.mark.parametrize("name, extra, drop, field, reason", CASES, ids=[c[0] for c in CASES])
def test_invalid_configs_name_the_field_and_the_reason(files, name, extra, drop, field, reason):
    body = config_text(files, extra, drop)
    with pytest.raises(config.ConfigError) as error:
        config.parse(body, "unit.yaml")
    lines = str(error.value).splitlines()
    assert lines[0].startswith("unit.yaml has")
    assert any(line.strip().startswith(f"{field}:") and reason in line for line in lines[1:]), str(error.value)


def test_missing_key_file_names_the_field_and_the_fix(files):
    (files / "unit.key").unlink()
    with pytest.raises(config.ConfigError, match=r"facehash.key_file: key file .* does not exist; create one"):
        config.parse(config_text(files))


def test_a_key_readable_by_others_is_refused_by_the_config(files):
    (files / "unit.key").chmod(0o644)
    with pytest.raises(config.ConfigError, match=r"facehash.key_file: .*mode 0644.*chmod 600"):
        config.parse(config_text(files))


def refused(files, body: str) -> str:
    with pytest.raises(config.ConfigError) as error:
        config.parse(body)
    return str(error.value)


def test_a_key_that_is_a_symbolic_link_is_refused_naming_the_link(files):
    (files / "real.key").write_bytes((files / "unit.key").read_bytes())
    (files / "real.key").chmod(0o600)
    (files / "unit.key").unlink()
    (files / "unit.key").symlink_to(files / "real.key")
    assert "is a symbolic link (to " in refused(files, config_text(files))


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_owned_by_another_user_is_refused(files):
    os.chown(files / "unit.key", 65534, 65534)
    assert "belongs to user id 65534, not to this user (0) or root" in refused(files, config_text(files))


def test_a_key_in_a_folder_others_can_write_is_refused(files):
    files.chmod(0o777)
    try:
        assert f"the folder {files} of key file" in refused(files, config_text(files))
    finally:
        files.chmod(0o700)


def test_a_password_file_readable_by_others_is_refused(files):
    password = files / "password"
    password.write_text("secret\n")
    password.chmod(0o644)
    body = config_text(
        files, f"  password_file: {password}\n".replace("  pass", "mqtt:\n  username: u\n  pass"), "mqtt:"
    )
    assert "mqtt.password_file: password file" in refused(files, body) and "chmod 600" in refused(files, body)
    password.chmod(0o600)
    assert config.parse(body).mqtt.password_file == password


@pytest.mark.parametrize("memory_gb, refuse", [(4, True), (8, True), (24, False)])
def test_bursts_that_would_not_fit_in_the_units_memory_are_refused(files, monkeypatch, memory_gb, refuse):
    """60 frames of 4608×3496 (the camera module 3's full size), four bursts in flight (two queued): 11.2 GiB."""
    monkeypatch.setattr(config.sections, "unit_memory", lambda: memory_gb * 2**30)
    camera = "source: {kind: picamera2, width: 4608, height: 3496}\nburst: {frames: 60, duration: 2, queue: 2}\n"
    body = config_text(files, camera, "source:")
    if refuse:
        assert "needs about 11.2 GB of memory" in refused(files, body)
        assert f"this unit's {memory_gb:.1f} GB: lower burst.frames, burst.queue or the resolution" in refused(
            files, body
        )
        assert config.parse(body, check_files=False)  # checked on the unit, not on a laptop running deploy
    else:
        assert config.parse(body).burst.frames == 60
    small = config_text(files, "source: {kind: picamera2}\nburst: {frames: 60, duration: 2}\n", "source:")
    assert config.parse(small).source.width == 1280  # the default size fits any Pi


def test_an_unreadable_tls_file_is_refused(files):
    missing = files / "ca.crt"
    with pytest.raises(config.ConfigError, match=r"mqtt.tls.ca_file: ca file .*ca.crt cannot be read"):
        config.parse(config_text(files, f"  tls: {{ca_file: {missing}}}\n".replace("  tls", "mqtt:\n  tls"), "mqtt:"))


def test_relative_paths_are_relative_to_the_config_file(files):
    path = files / "unit.yaml"
    path.write_text(config_text(files).replace(str(files / "unit.key"), "unit.key"))
    assert config.load(path).facehash.key_file == files / "unit.key"


def test_yaml_errors_say_where(files):
    with pytest.raises(config.ConfigError, match="not valid YAML at line 2"):
        config.parse("unit: {site: a\nburst: [\n", "unit.yaml")


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_an_invalid_config_exits_78_with_the_field_named(files, command):
    path = files / "unit.yaml"
    path.write_text(config_text(files, "burst: {frames: 0}\n"))
    args = [sys.executable, "-m", "edge.cli", command] + (["--config"] if command == "run" else []) + [str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "burst.frames: Input should be greater than or equal to 1 (got 0)" in result.stderr


def test_check_config_accepts_a_good_config_and_prints_its_fingerprint(files):
    path = files / "unit.yaml"
    path.write_text(config_text(files))
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert f"valid (fingerprint {config.fingerprint(path)})" in result.stdout


def test_the_shipped_example_documents_a_valid_config(tmp_path):
    body = (ROOT / "config" / "example.yaml").read_text()
    key = tmp_path / "k"
    facehash.write_key_file(key)
    body = body.replace("/etc/traceon-edge/facehash.key", str(key))
    cfg = config.parse(body)
    assert cfg.source.kind == "picamera2" and cfg.trigger.kind == "pir"
    assert (cfg.facehash.scheme, cfg.facehash.bits) == ("fh2", 1024)


def test_the_shipped_demo_config_publishes_fh2():
    demo = ROOT / "config" / "dev-video.yaml"  # its key is made by tools/demo.sh: not checked here
    assert config.parse(demo.read_text(), demo.name, demo.parent, check_files=False).facehash.scheme == "fh2"
