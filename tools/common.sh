# Shared by tools/demo.sh and tools/test.sh: find Pythons, make venvs, install system packages.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {  # apt_install PACKAGE... — only those not installed yet
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing system packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

find_python() {  # find_python 3.11 — prints a working interpreter of that version, or nothing
  local v=$1 c
  # The system's Python first, as on a Pi: it lets tests run commands as another user (pyenv's lives under /root).
  local candidates=("/usr/bin/python$v" "/usr/local/bin/python$v" "python$v")
  if command -v pyenv >/dev/null; then
    for c in "$(pyenv root)/versions/$v"*/bin/python"$v"; do candidates+=("$c"); done
  fi
  for c in "${candidates[@]}"; do
    if "$c" -c 'import sys, venv' >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

default_python() {  # the Python for .venv: 3.11 (bookworm), else 3.13 (trixie), else python3
  find_python 3.11 || find_python 3.13 || command -v python3
}

make_venv() {  # make_venv PYTHON DIR EXTRAS — creates DIR if needed and installs the package into it
  local python=$1 dir=$2 extras=$3
  if ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install "python3-venv" "python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
  fi
  [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
  say "installing traceon-edge$extras into $dir ($("$dir/bin/python" --version))"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -e ".$extras"
}
