#!/usr/bin/env bash
# Set up a venv and run the main job on defaults that need no camera and no GPIO:
# faces and embeddings of the sample photos in ../shared/data/faces.
source "$(dirname "$0")/common.sh"
python=$(find_python 3.11 || true)
python=${python:-$(find_python 3.13 || true)}
python=${python:-python3}
make_venv "$python" .venv ""
say "traceon-edge embed ../shared/data/faces"
exec .venv/bin/traceon-edge embed "${@:-../shared/data/faces}"
