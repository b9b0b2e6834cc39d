"""Real servers on free loopback ports: mosquitto and PostgreSQL (tools/servers.py, which the benchmarks
use too), OpenSSH's sshd, and the certificates for a TLS listener."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

# tools/servers.py, on pytest's pythonpath (pyproject.toml): shared with the benchmarks, so imported, not moved
from servers import Broker, DelayRelay, Postgres, ServerError, free_port

from support.wait import wait_until

__all__ = [
    "Broker",
    "DelayRelay",
    "Postgres",
    "ServerError",
    "Sshd",
    "free_port",
    "listening",
    "make_certificates",
    "tls_listener",
]

SSHD = Path("/usr/sbin/sshd")


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def make_certificates(directory: Path) -> None:
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate, with openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=traceon test CA",
    )
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
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            *extra,
        )


def tls_listener(directory: Path, require_certificate: bool) -> tuple[int, str]:
    """A TLS listener's port and its mosquitto lines, with the certificates of make_certificates."""
    port = free_port()
    lines = (
        f"listener {port} 127.0.0.1\ncafile {directory / 'ca.crt'}\ncertfile {directory / 'server.crt'}\n"
        f"keyfile {directory / 'server.key'}\nrequire_certificate {str(require_certificate).lower()}\n"
    )
    return port, lines


class Sshd:
    """OpenSSH's sshd on 127.0.0.1 with its own host key; one client key authorised for the current user."""

    def __init__(self, directory: Path):
        if not SSHD.exists():
            pytest.fail("openssh-server is not installed: tools/test.sh installs it (apt-get install openssh-server)")
        directory.mkdir()
        self.dir, self.port = directory, free_port()
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", directory / name], check=True)
        (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
        (directory / "known_hosts").write_text("traceon-test-unit " + (directory / "host_key.pub").read_text())
        conf = directory / "sshd_config"
        conf.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {directory}/host_key\nPidFile {directory}/sshd.pid\n"
            f"AuthorizedKeysFile {directory}/authorized_keys\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {getpass.getuser()}\nLogLevel ERROR\n"
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege-separation directory
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", conf], stderr=subprocess.DEVNULL)
        wait_until(lambda: listening(self.port), 10, f"sshd to listen on port {self.port}")

    def client_config(self, ports: dict[str, int]) -> Path:
        """An ssh_config naming each host alias's port; everything else as a technician's laptop would have it."""
        path = self.dir / "ssh_config"
        hosts = "".join(f"Host {alias}\n  Port {port}\n" for alias, port in ports.items())
        path.write_text(
            f"{hosts}Host *\n  HostName 127.0.0.1\n  User {getpass.getuser()}\n  IdentityFile {self.dir}/client_key\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {self.dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  HostKeyAlias traceon-test-unit\n  LogLevel ERROR\n"
        )
        return path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
