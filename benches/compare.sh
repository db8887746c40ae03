#!/usr/bin/env bash
# Side-by-side timings of vqm and FFmpeg's own filters on the same files in
# the same run (hyperfine, Debian package), and peak RSS (/usr/bin/time -v).
# Usage: benches/compare.sh [workdir]   (needs ffmpeg, hyperfine, GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
# 1080p 4:2:0 8-bit y4m pair of 120 frames (decoding costs little)
[ -f "$work/r1080.y4m" ] || ff -f lavfi -i "testsrc2=s=1920x1080:r=30:d=4" -pix_fmt yuv420p "$work/r1080.y4m"
[ -f "$work/d1080.y4m" ] || ff -i "$work/r1080.y4m" -vf "noise=alls=8:allf=t" -pix_fmt yuv420p "$work/d1080.y4m"
# the same pictures as H.264
[ -f "$work/r1080.mp4" ] || ff -i "$work/r1080.y4m" -c:v libx264 -preset veryfast -crf 18 "$work/r1080.mp4"
[ -f "$work/d1080.mp4" ] || ff -i "$work/d1080.y4m" -c:v libx264 -preset veryfast -crf 30 "$work/d1080.mp4"
cargo build --release --quiet
V=target/release/vqm
R="$work/r1080.y4m"; D="$work/d1080.y4m"
FF="ffmpeg -nostdin -v error"
hyperfine -N -w 1 -r 7 --export-markdown "$work/y4m.md" --export-json "$work/y4m.json" \
  -n "vqm psnr" "$V $R $D -m psnr -q" \
  -n "ffmpeg psnr" "$FF -i $D -i $R -lavfi [0:v][1:v]psnr -f null -" \
  -n "vqm psnr,ssim (ffmpeg mode)" "$V $R $D -m psnr,ssim --ssim-mode ffmpeg -q" \
  -n "vqm psnr,ssim (gaussian)" "$V $R $D -m psnr,ssim -q" \
  -n "vqm psnr,ssim (gaussian) --threads 1" "$V $R $D -m psnr,ssim -q --threads 1" \
  -n "vqm psnr,ssim (gaussian) --threads 2" "$V $R $D -m psnr,ssim -q --threads 2" \
  -n "ffmpeg psnr+ssim" "$FF -i $D -i $R -lavfi [0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim -f null -"
R="$work/r1080.mp4"; D="$work/d1080.mp4"
hyperfine -N -w 1 -r 7 --export-markdown "$work/h264.md" --export-json "$work/h264.json" \
  -n "vqm psnr,ssim (H.264)" "$V $R $D -m psnr,ssim -q" \
  -n "ffmpeg psnr+ssim (H.264)" "$FF -i $D -i $R -lavfi [0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim -f null -" \
  -n "ffmpeg decode both (H.264)" "$FF -i $R -i $D -map 0:v -map 1:v -f null -"
# CPU time (user + system, median of 5) of vqm on the H.264 pair against
# decoding both inputs alone
cpu() { for _ in 1 2 3 4 5; do /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; done | sort -n | sed -n 3p; }
echo "CPU s, H.264 pair: vqm psnr,ssim $(cpu "$V" "$R" "$D" -m psnr,ssim -q)," \
  "ffmpeg decode both $(cpu $FF -i "$R" -i "$D" -map 0:v -map 1:v -f null -)"
for m in psnr psnr,ssim; do
  /usr/bin/time -v "$V" "$work/r1080.y4m" "$work/d1080.y4m" -m "$m" -q 2>&1 | grep -E "Maximum resident" | sed "s/^/$m: /"
done
cat "$work/y4m.md" "$work/h264.md"
# medians (what BENCHMARKS.md quotes)
for j in "$work/y4m.json" "$work/h264.json"; do
  python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("median %8.1f ms  %s" % (r["median"] * 1000, r["command"]))' "$j"
done
