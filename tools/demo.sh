#!/usr/bin/env bash
# Set up a venv and run the main job on defaults that need no camera and no GPIO: the daemon on
# config/dev-video.yaml (the recorded clip as its camera, a burst every two seconds), publishing to a
# local mosquitto, printing each event (schema 3, FaceHashes of scheme fh2) once the broker has acknowledged it.
# Ctrl-C stops it cleanly.
source "$(dirname "$0")/common.sh"
make_venv "$(default_python)" .venv "[unit]"
apt_install mosquitto
mkdir -p build
[ -f build/dev.key ] || .venv/bin/traceon-edge keygen build/dev.key
broker=""
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  say "starting mosquitto on localhost:1883"
  setsid mosquitto -p 1883 >build/mosquitto.log 2>&1 &  # its own session: Ctrl-C reaches the daemon, which then says offline
  broker=$!
  sleep 0.5
else
  say "using the MQTT broker already listening on localhost:1883"
fi
say "traceon-edge run --config config/dev-video.yaml --print-events   (Ctrl-C to stop)"
.venv/bin/traceon-edge run --config config/dev-video.yaml --print-events "$@" &
daemon=$!
# Stop the daemon first (it flushes and says offline), then the broker this script started.
trap 'kill -TERM $daemon 2>/dev/null' INT TERM
wait $daemon || wait $daemon
status=$?
[ -n "$broker" ] && kill "$broker" 2>/dev/null
exit $status
