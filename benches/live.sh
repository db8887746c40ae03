#!/usr/bin/env bash
# Live monitoring figures (BENCHMARKS.md, "Live monitoring"): two real-time
# MPEG-TS streams over UDP on loopback (ffmpeg -re, 640x360 25 fps H.264,
# GOP 1 s), watched by vqm with psnr,ssim.
#  1. first record: both senders running, vqm started RUNS times; seconds
#     from vqm's start to its first frame record in the log.
#  2. restart: the distorted sender killed and restarted 5 s later; seconds
#     from the restart to the first frame record after stream_restored,
#     and the reference frames left unpaired against the outage's frames.
#  3. steady lag over SECONDS: the summary's lag_ms, and RSS every 10 s
#     (HOG=1: two busy loops, one per core, from 15 s to 45 s).
#  4. /metrics while 200 idle connections are held open: time of a GET.
#  5. senders started 2 s after vqm, RUNS times: seconds from the later
#     sender's start (its first keyframe) to the first frame record.
#  6. the distorted stream 7 s behind the reference (its sender started 7 s
#     later, vqm joining both 2 s after): the sync found, its offset and
#     score, the alignment delay, and alerts at 30 dB.
# Usage: benches/live.sh [runs] [seconds] [workdir]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
secs="${2:-60}"
work="${3:-$(mktemp -d)}"
mkdir -p "$work"
cargo build --release --quiet
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
[ -f "$work/r.ts" ] || ff -f lavfi -i "testsrc2=s=640x360:r=25:d=30" -c:v libx264 -g 25 -bf 0 -pix_fmt yuv420p -f mpegts "$work/r.ts"
[ -f "$work/d.ts" ] || ff -i "$work/r.ts" -c:v libx264 -crf 30 -g 25 -bf 0 -pix_fmt yuv420p -f mpegts "$work/d.ts"
port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
send() { ffmpeg -nostdin -v error -re -stream_loop -1 -i "$1" -c copy -f mpegts "udp://127.0.0.1:$2?pkt_size=1316" </dev/null >/dev/null 2>&1 & echo $!; }
p1=$(port); p2=$(port)
s1=$(send "$work/r.ts" "$p1"); s2=$(send "$work/d.ts" "$p2")
trap 'kill $s1 $s2 2>/dev/null || true' EXIT
sleep 2
args() { echo "udp://127.0.0.1:$p1 udp://127.0.0.1:$p2 -m psnr,ssim -q"; }
# shellcheck disable=SC2046
vqm() { exec target/release/vqm $(args) "$@"; }
# seconds from now until the log at $1 has a frame record (after line $2)
first_frame() {
  python3 - "$1" "${2:-}" <<'PY'
import json, sys, time
path, after = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
while time.monotonic() - t0 < 60:
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        lines = []
    start = 0
    if after:
        start = next((i for i, l in enumerate(lines) if f'"kind":"{after}"' in l), None)
        if start is None:
            time.sleep(0.01); continue
    if any(l.startswith('{"type":"frame"') for l in lines[start:]):
        print(f"{time.monotonic() - t0:.3f}"); sys.exit(0)
    time.sleep(0.01)
print("timeout"); sys.exit(1)
PY
}
echo "== 1. first record after vqm starts ($runs runs)"
for i in $(seq "$runs"); do
  rm -f "$work/first.ndjson"
  (vqm --log "$work/first.ndjson") & v=$!
  first_frame "$work/first.ndjson"
  kill -INT $v; wait $v || true
done | tee "$work/first.txt"
python3 -c 'import statistics,sys; v=[float(x) for x in open(sys.argv[1]) if x[0].isdigit()]; print("first record: median %.3f s, max %.3f s over %d runs" % (statistics.median(v), max(v), len(v)))' "$work/first.txt"
echo "== 2. distorted sender restarted after 5 s"
rm -f "$work/restart.ndjson"
(vqm --log "$work/restart.ndjson" --stall-timeout 2) & v=$!
sleep 8
kill $s2; wait $s2 2>/dev/null || true
killed=$(date +%s.%N)
sleep 5
s2=$(send "$work/d.ts" "$p2")
restarted=$(date +%s.%N)
took=$(first_frame "$work/restart.ndjson" stream_restored)
sleep 5
kill -INT $v; wait $v || true
python3 - "$work/restart.ndjson" "$killed" "$restarted" "$took" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
killed, restarted, took = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = recs[-1]
print(f"first record {took} s after the restart (the sender's first keyframe within 1 s of it)")
print(f"outage {restarted - killed:.1f} s = {25 * (restarted - killed):.0f} reference frames; "
      f"unpaired reference frames {s['unpaired']['reference']}, pending pairs left out {s['sync_pending']}, "
      f"reconnects {s['reconnects']}, alerts {s['alerts']}")
PY
echo "== 3. steady lag over $secs s"
rm -f "$work/steady.ndjson"
# shellcheck disable=SC2046
target/release/vqm $(args) --log "$work/steady.ndjson" & v=$!
rss=()
for t in $(seq "$secs"); do
  # HOG=1: both cores kept busy by two loops from 15 s to 45 s
  if [ "${HOG:-0}" = 1 ] && [ "$t" = 15 ]; then
    timeout 30 sh -c 'while :; do :; done' & timeout 30 sh -c 'while :; do :; done' &
  fi
  sleep 1
  rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$v/status")")
done
kill -INT $v; wait $v || true
echo "RSS (MB) at 10 s intervals: $(for ((k = 9; k < ${#rss[@]}; k += 10)); do printf '%d ' $(( rss[k] / 1024 )); done)"
python3 -c 'import json,sys; s=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print("pairs", s["frames"], "lag_ms", s["lag_ms"], "latency_ms", s["latency_ms"], "lag drops", s["lag_drops"])' "$work/steady.ndjson"
echo "== 4. /metrics with 200 idle connections"
pp=$(tport)
(vqm --log /dev/null --prometheus "127.0.0.1:$pp") & v=$!
sleep 3
python3 - "$pp" <<'PY'
import socket, sys, time, statistics
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
times = []
for _ in range(20):
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = c.recv(65536)
        if not b: break
        data += b
    times.append((time.monotonic() - t0) * 1000)
    assert data.startswith(b"HTTP/1.1 200")
print(f"GET /metrics with 200 idle connections: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (20 scrapes)")
PY
kill -INT $v; wait $v || true
echo "== 5. senders started after vqm ($runs runs)"
for i in $(seq "$runs"); do
  q1=$(port); q2=$(port)
  rm -f "$work/after.ndjson"
  target/release/vqm "udp://127.0.0.1:$q1" "udp://127.0.0.1:$q2" -m psnr,ssim -q --log "$work/after.ndjson" & v=$!
  sleep 2
  a1=$(send "$work/r.ts" "$q1"); a2=$(send "$work/d.ts" "$q2")
  first_frame "$work/after.ndjson"
  kill -INT $v; wait $v || true
  kill $a1 $a2; wait $a1 $a2 2>/dev/null || true
done | tee "$work/after.txt"
python3 -c 'import statistics,sys; v=[float(x) for x in open(sys.argv[1]) if x[0].isdigit()]; print("first record after the senders start: median %.3f s, max %.3f s over %d runs" % (statistics.median(v), max(v), len(v)))' "$work/after.txt"
echo "== 6. distorted stream 7 s behind the reference"
# both senders loop the clip, the distorted one started 7 s later (an
# encoder's delay); vqm joins both running streams 2 s after that
q1=$(port); q2=$(port)
rm -f "$work/delay.ndjson"
a1=$(send "$work/r.ts" "$q1")
sleep 7
a2=$(send "$work/d.ts" "$q2")
sleep 2
target/release/vqm "udp://127.0.0.1:$q1" "udp://127.0.0.1:$q2" -m psnr,ssim -q --alert 'psnr_y<30' --log "$work/delay.ndjson" & v=$!
sleep 25
kill -INT $v; wait $v || true
kill $a1 $a2; wait $a1 $a2 2>/dev/null || true
python3 - "$work/delay.ndjson" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
syncs = [r for r in recs if r.get("kind") == "sync"]
s = recs[-1]
for r in syncs:
    print(f"sync: offset {r['offset']} frames, {r.get('psnr')} dB, runner-up {r.get('runner_up')}")
print(f"alerts {s['alerts']}, pairs {s['frames']}, mean psnr_y {s['metrics']['psnr_y']['mean']:.2f} dB, "
      f"alignment delay {s.get('alignment_delay_ms')}")
PY
