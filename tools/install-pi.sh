#!/usr/bin/env bash
# Install (or update) traceon-edge on a 64-bit Raspberry Pi OS unit. Idempotent: run it again to update.
#
#   sudo tools/install-pi.sh [--dry-run] [--arch ARCH] [--os raspios|debian]
#
# apt packages, a service user in video/gpio, a venv with --system-site-packages (picamera2 and lgpio
# come from apt), the package, a FaceHash key (generated if absent, mode 0600), a config (the example if
# absent), the systemd unit, enable and start. --dry-run prints every step and changes nothing.
# --arch overrides the detected Debian architecture, --os the detected system (to rehearse an install
# for another unit). picamera2 and lgpio come only from Raspberry Pi OS's own archive, not Debian's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/traceon-edge
ETC=/etc/traceon-edge
USER_NAME=traceon
dry=0
arch=""
os_kind=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --arch) arch=${2:?--arch needs a value}; shift ;;
    --os) os_kind=${2:?--os needs raspios or debian}; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-pi.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
arch=${arch:-$(dpkg --print-architecture 2>/dev/null || uname -m)}
if [ -z "$os_kind" ]; then  # Raspberry Pi OS: /etc/rpi-issue, and its archive in apt's sources
  if [ -e /etc/rpi-issue ] || grep -rqs archive.raspberrypi /etc/apt/sources.list /etc/apt/sources.list.d/; then
    os_kind=raspios
  else
    os_kind=debian
  fi
fi
case "$os_kind" in
  raspios|debian) ;;
  *) echo "install-pi.sh: --os must be raspios or debian, not $os_kind" >&2; exit 2 ;;
esac

case "$arch" in
  arm64|aarch64|amd64|x86_64) ;;
  armhf|armel|armv7l|armv6l|i386)
    cat >&2 <<MSG
install-pi.sh: this is a 32-bit system ($arch). traceon-edge needs 64-bit Raspberry Pi OS:
dlib, LiteRT (the face model's runtime) and OpenCV publish no 32-bit ARM builds. Flash the 64-bit
Raspberry Pi OS (bookworm or trixie) image onto the card and run this installer again.
MSG
    exit 3 ;;
  *) echo "install-pi.sh: unsupported architecture $arch (64-bit Raspberry Pi OS, arm64, is the target)" >&2; exit 3 ;;
esac

step() { printf '==> %s\n' "$*"; }
run() {  # run CMD...: print it; execute it unless --dry-run
  printf '    $ %s\n' "$*"
  [ "$dry" = 1 ] || "$@"
}
[ "$dry" = 1 ] || [ "$(id -u)" = 0 ] || { echo "install-pi.sh: run it as root (sudo), or with --dry-run" >&2; exit 1; }

step "apt packages"
packages=(python3-venv python3-pip mosquitto-clients)
if [ "$os_kind" = raspios ] && { [ "$arch" = arm64 ] || [ "$arch" = aarch64 ]; }; then
  packages+=(python3-picamera2 python3-lgpio)
else
  cat <<MSG
    this is plain Debian ($arch), not Raspberry Pi OS: python3-picamera2 and python3-lgpio exist only in
    Raspberry Pi OS's archive, so they are not installed. What works here:
      camera: a USB webcam (source: {kind: webcam, device: 0}) or a recorded video; the Pi camera module
              (source.kind: picamera2) needs Raspberry Pi OS
      PIR:    gpiozero's own pin driver, with no library: add Environment=GPIOZERO_PIN_FACTORY=native to
              the unit (systemctl edit traceon-edge); or use trigger.kind: motion or interval
    For a Pi at a doorway, Raspberry Pi OS (64-bit) is the supported system.
MSG
fi
run env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"

step "service user $USER_NAME in groups video and gpio"
id "$USER_NAME" >/dev/null 2>&1 || run useradd --system --home /var/lib/traceon-edge --shell /usr/sbin/nologin "$USER_NAME"
getent group gpio >/dev/null 2>&1 || run groupadd --system gpio
run usermod -aG video,gpio "$USER_NAME"

step "the software in $PREFIX (venv with --system-site-packages)"
run install -d -m 0755 "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || run python3 -m venv --system-site-packages "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --quiet --upgrade "$ROOT[unit]"

step "configuration in $ETC"
run install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
if [ -e "$ETC/facehash.key" ]; then
  echo "    keeping the existing key $ETC/facehash.key"
else
  run "$PREFIX/venv/bin/traceon-edge" keygen "$ETC/facehash.key"
fi
run chown "$USER_NAME:$USER_NAME" "$ETC/facehash.key"
run chmod 0600 "$ETC/facehash.key"
if [ -e "$ETC/config.yaml" ]; then
  echo "    keeping the existing $ETC/config.yaml"
else
  run install -m 0640 -o root -g "$USER_NAME" "$ROOT/config/example.yaml" "$ETC/config.yaml"
  echo "    edit unit: and mqtt: in $ETC/config.yaml for this doorway"
fi

step "systemd unit"
run install -m 0644 "$ROOT/systemd/traceon-edge.service" /etc/systemd/system/traceon-edge.service
run systemctl daemon-reload
run systemctl enable traceon-edge
if [ "$dry" = 1 ] || "$PREFIX/venv/bin/traceon-edge" check-config "$ETC/config.yaml"; then
  run systemctl restart traceon-edge
  step "done: journalctl -u traceon-edge -f   ·   $PREFIX/venv/bin/traceon-edge status"
else
  step "installed but not started: fix $ETC/config.yaml (above), then: sudo systemctl restart traceon-edge"
fi
