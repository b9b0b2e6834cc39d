#!/usr/bin/env bash
# The contact tracer's demo, end to end with the real commands: two checkpoints on one local broker
# (door-a plays the recorded Hamilton clip, door-b's camera is a folder of photos of Lin-Manuel Miranda
# and Alex Lacamoire), a collector storing their events in SQLite, then `trace` of the person in one
# known photo: his sightings at both doors, and Alex as his contact at door-b. Units, `embed` and `trace` use
# FaceHash scheme fh2, their default (facehash.scheme, --scheme). Needs ../shared/data.
source "$(dirname "$0")/common.sh"
make_venv "$(default_python)" .venv "[unit,console]"
apt_install mosquitto
DATA="$(cd "$ROOT/.." && pwd)/shared/data"
[ -d "$DATA/faces" ] || { echo "the demo needs the shared photos and clip in $DATA" >&2; exit 1; }
work=build/trace-demo
mkdir -p "$work"
rm -rf "$work"/*.sqlite* "$work/door-b-camera"
mkdir "$work/door-b-camera"  # links, not copies: each burst of three sees Lin-Manuel once and Alex twice
ln -s "$DATA/faces/alex_lacamoire/2.jpg" "$work/door-b-camera/1.jpg"
ln -s "$DATA/faces/lin_manuel_miranda/1.png" "$work/door-b-camera/2.png"
ln -s "$DATA/faces/alex_lacamoire/3.jpg" "$work/door-b-camera/3.jpg"
[ -f build/dev.key ] || .venv/bin/traceon-edge keygen build/dev.key
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

unit_config() {  # unit_config CHECKPOINT TRIGGER SOURCE BURST
  cat >"$work/$1.yaml" <<EOF
unit: {site: demo, checkpoint: $1, device: unit-1}
trigger: $2
source: $3
burst: $4
vision: {upsample: 1, threads: 1}
facehash: {key_file: $ROOT/build/dev.key}
mqtt: {host: 127.0.0.1, port: $port, health_every: 5}
outbox: {path: $ROOT/$work/$1-outbox.sqlite}
logging: {level: WARNING}
EOF
}
unit_config door-a "{kind: interval, seconds: 1}" \
  "{kind: video, path: $DATA/video/short_hamilton_clip.mp4, realtime: true}" "{frames: 8, duration: 0.8, cooldown: 0}"
unit_config door-b "{kind: interval, seconds: 2}" \
  "{kind: images, path: $ROOT/$work/door-b-camera, loop: true}" "{frames: 3, duration: 0.3, cooldown: 0}"

pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' EXIT
say "mosquitto on 127.0.0.1:$port"
setsid mosquitto -p "$port" >"$work/mosquitto.log" 2>&1 &  # its own session: Ctrl-C stops the units first
pids+=($!)
sleep 0.5
say "collect into $work/sightings.sqlite"
.venv/bin/traceon-edge collect --broker "127.0.0.1:$port" --client-id demo-tracer --db "$work/sightings.sqlite" &
collector=$!
sleep 1
say "two checkpoints for 20 s: door-a replays the clip, door-b photographs Lin-Manuel and Alex"
.venv/bin/traceon-edge run --config "$work/door-a.yaml" &
a=$!
.venv/bin/traceon-edge run --config "$work/door-b.yaml" &
b=$!
sleep 20
kill -TERM $a $b
wait $a $b || true
sleep 1
kill -TERM $collector
wait $collector || true

photo="$DATA/faces/lin_manuel_miranda/1.png"
say "the FaceHash of the person in $photo (the tracer's starting point)"
code=$(.venv/bin/traceon-edge embed --key-file build/dev.key "$photo" 2>/dev/null |
  .venv/bin/python -c 'import json, sys; print(json.loads(sys.stdin.readline())["facehash"])')
echo "${code:0:40}…"
say "traceon-edge trace FACEHASH --db $work/sightings.sqlite --stride 30m --since 14d"
.venv/bin/traceon-edge trace "$code" --db "$work/sightings.sqlite" --stride 30m --since 14d
say "the same trace as a timeline: traceon-edge trace FACEHASH ... --format html --output $work/trace.html"
.venv/bin/traceon-edge trace "$code" --db "$work/sightings.sqlite" --format html --output "$work/trace.html"
echo "open $ROOT/$work/trace.html in a browser (one file, nothing fetched)"

# The operators' console on the demo's store: the same trace in a browser, by an account, audited.
[ -f build/demo-audit.key ] || .venv/bin/traceon-edge audit keygen build/demo-audit.key
password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
for who in tracer auditor; do  # a fresh store each run: make both accounts again
  printf '%s\n' "$password" | .venv/bin/traceon-edge users add "demo-$who" --role "$who" --password-stdin \
    --db "$work/sightings.sqlite" --audit-key build/demo-audit.key 2>/dev/null
done
web=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
say "the console on the demo's store: http://127.0.0.1:$web/ (Ctrl-C stops it)"
cat >&2 <<TEXT
  sign in as demo-tracer (password $password), open Trace, upload $photo
  (or paste the FaceHash above) with any case id and reason: the same sightings, his contact, the timelines;
  publish a notice from a visit and see it at http://127.0.0.1:$web/notices.
  Then sign in as demo-auditor (same password) and see that trace in the audit log.
TEXT
.venv/bin/traceon-edge console --db "$work/sightings.sqlite" --audit-key build/demo-audit.key \
  --key-file build/dev.key --host 127.0.0.1 --port "$web" --broker "127.0.0.1:$port"
