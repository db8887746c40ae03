#!/usr/bin/env bash
# --dump-worst against the same run without it: time (hyperfine) and peak
# RSS (/usr/bin/time), on 300-frame 720p and 360p H.264 pairs.
# Usage: benches/dump_worst.sh [workdir]   (needs ffmpeg, hyperfine, GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work/dw"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
for r in 720:1280x720 360:640x360; do
  n=${r%%:*}; size=${r#*:}
  [ -f "$work/r$n.mp4" ] || ff -f lavfi -i "testsrc2=s=$size:r=30:d=10" -c:v libx264 -preset veryfast -crf 16 -pix_fmt yuv420p "$work/r$n.mp4"
  [ -f "$work/d$n.mp4" ] || ff -i "$work/r$n.mp4" -vf "noise=alls=6:allf=t" -c:v libx264 -preset veryfast -crf 32 "$work/d$n.mp4"
done
cargo build --release --quiet
V=target/release/vqm
for n in 720 360; do
  hyperfine -N -w 1 -r 9 \
    -n "$n without" "$V $work/r$n.mp4 $work/d$n.mp4 -m psnr,ssim -q" \
    -n "$n --dump-worst" "$V $work/r$n.mp4 $work/d$n.mp4 -m psnr,ssim -q --dump-worst $work/dw"
  for a in "" "--dump-worst $work/dw"; do
    for _ in 1 2 3; do /usr/bin/time -f "%M" "$V" "$work/r$n.mp4" "$work/d$n.mp4" -m psnr,ssim -q $a 2>&1 | tail -1; done \
      | sort -n | sed -n 2p | sed "s|^|$n ${a:-without}: peak RSS KB |"
  done
done
