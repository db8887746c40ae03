#!/usr/bin/env bash
# Live latency at 1080p30: two real-time MPEG-TS streams over UDP on
# loopback (ffmpeg -re), watched by vqm with the default metrics for
# SECONDS, then SIGINT. Prints the summary's latency_ms (from both frames
# decoded to the record written) and the pairs measured.
# Usage: benches/latency.sh [seconds] [workdir]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
cargo build --release --quiet
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
[ -f "$work/r.ts" ] || ff -f lavfi -i "testsrc2=s=1920x1080:r=30:d=10" -c:v libx264 -preset veryfast -g 30 -bf 0 -b:v 8M -pix_fmt yuv420p -f mpegts "$work/r.ts"
[ -f "$work/d.ts" ] || ff -i "$work/r.ts" -c:v libx264 -preset veryfast -g 30 -bf 0 -b:v 2M -pix_fmt yuv420p -f mpegts "$work/d.ts"
port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
p1=$(port); p2=$(port)
ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/r.ts" -c copy -f mpegts "udp://127.0.0.1:$p1?pkt_size=1316" </dev/null >/dev/null 2>&1 &
s1=$!
ffmpeg -nostdin -v error -re -stream_loop -1 -i "$work/d.ts" -c copy -f mpegts "udp://127.0.0.1:$p2?pkt_size=1316" </dev/null >/dev/null 2>&1 &
s2=$!
trap 'kill $s1 $s2 2>/dev/null || true' EXIT
target/release/vqm "udp://127.0.0.1:$p1" "udp://127.0.0.1:$p2" --log "$work/live.ndjson" -q &
v=$!
sleep "$secs"
kill -INT "$v"
wait "$v"
tail -1 "$work/live.ndjson" | python3 -c 'import json,sys; s=json.loads(sys.stdin.read()); print("pairs", s["frames"], "latency_ms", s["latency_ms"], "budget (2 frame intervals) 66.7 ms")'
