#!/usr/bin/env bash
# Soak: vqm over a long generated stream (default 30,000 frames, 320x180,
# both inputs produced on the fly by the ffmpeg CLI through FIFOs), with
# its resident memory sampled every second into rss.csv. Memory must stay
# flat: the last samples are compared with the ones after warm-up.
# Usage: benches/soak.sh [frames] [workdir] [size, default 320x180]
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-30000}"
work="${2:-$(mktemp -d)}"
size="${3:-320x180}"
mkdir -p "$work"
cargo build --release --quiet
rm -f "$work/ref.fifo" "$work/dist.fifo"
mkfifo "$work/ref.fifo" "$work/dist.fifo"
src="testsrc2=s=$size:r=25"
ffmpeg -nostdin -v error -y -f lavfi -i "$src" -frames:v "$frames" -pix_fmt yuv420p -f yuv4mpegpipe "$work/ref.fifo" &
ffmpeg -nostdin -v error -y -f lavfi -i "$src" -frames:v "$frames" -vf "noise=alls=10:allf=t" -pix_fmt yuv420p -f yuv4mpegpipe "$work/dist.fifo" &
start=$(date +%s)
target/release/vqm "$work/ref.fifo" "$work/dist.fifo" -m psnr,ssim --log "$work/soak.ndjson" -q &
pid=$!
echo "seconds,rss_kb" > "$work/rss.csv"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss" >> "$work/rss.csv"
  sleep 1
done
wait "$pid"
wait
measured=$(grep -c '"type":"frame"' "$work/soak.ndjson")
echo "frames measured: $measured in $(( $(date +%s) - start )) s"
python3 - "$work/rss.csv" <<'PY'
import csv, sys
rows = [(int(r["seconds"]), int(r["rss_kb"])) for r in csv.DictReader(open(sys.argv[1]))]
n = len(rows)
early = [r for _, r in rows[n // 10: n // 5 or 1]] or [rows[0][1]]
late = [r for _, r in rows[-max(1, n // 10):]]
print(f"samples {n}; RSS after warm-up {max(early)/1024:.1f} MB, at the end {max(late)/1024:.1f} MB, peak {max(r for _, r in rows)/1024:.1f} MB")
PY
echo "samples: $work/rss.csv"
