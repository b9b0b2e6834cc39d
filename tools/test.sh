#!/usr/bin/env bash
# Set up and run the tests: ruff lint and format check and the import contracts (a failure there stops
# the run at once: the code does not have the shape CI holds it to), then pytest on Python 3.11 and 3.13
# (each one that this machine has; at least one must be there).
source "$(dirname "$0")/common.sh"
apt_install mosquitto openssh-server postgresql chromium  # the tests start their own broker, sshd and PostgreSQL on free loopback ports; chromium renders the HTML trace
ran=() failed=() missing=()
for v in 3.11 3.13; do
  python=$(find_python "$v" || true)
  if [ -z "$python" ]; then missing+=("$v"); say "Python $v not found: skipping it"; continue; fi
  venv=".venv-$v"
  make_venv "$python" "$venv" "[test]"
  if [ ${#ran[@]} -eq 0 ]; then
    say "ruff check and format check"
    "$venv/bin/ruff" check . && "$venv/bin/ruff" format --check . || failed+=("ruff")
    say "the walls between the roles (import contracts in pyproject.toml)"
    "$venv/bin/lint-imports" || failed+=("import contracts")
    if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]} (no test was run)" >&2; exit 1; fi
  fi
  say "pytest on Python $v"
  "$venv/bin/python" -m pytest "$@" || failed+=("pytest $v")
  ran+=("$v")
done
[ ${#ran[@]} -gt 0 ] || { echo "no Python 3.11 or 3.13 found" >&2; exit 1; }
say "tested on Python ${ran[*]}${missing:+ (not found: ${missing[*]})}"
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}" >&2; exit 1; fi
