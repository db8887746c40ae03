#!/usr/bin/env bash
# vqm batch against the same pairs run one vqm process after another, on a
# 12-row manifest (3 references x 4 rungs: 720p, 540p, 480p, 360p; 5 s at
# 25 fps each), and the CPU time of the batch in one run and over 2 shards.
# Usage: benches/batch.sh [workdir]   (needs ffmpeg, hyperfine, GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
srcs=("testsrc2=s=1280x720:r=25:d=5" "mandelbrot=s=1280x720:r=25,trim=duration=5" "life=s=1280x720:r=25:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00,trim=duration=5")
manifest="$work/catalog.csv"
echo "id,reference,distorted" > "$manifest"
for i in 0 1 2; do
  ref="$work/ref$i.mp4"
  [ -f "$ref" ] || ff -f lavfi -i "${srcs[$i]}" -c:v libx264 -preset veryfast -crf 12 -pix_fmt yuv420p "$ref"
  for h in 720 540 480 360; do
    d="$work/ref$i-$h.mp4"
    [ -f "$d" ] || ff -i "$ref" -vf "scale=-2:$h" -c:v libx264 -preset veryfast -crf 30 "$d"
    echo "t$i-$h,$ref,$d" >> "$manifest"
  done
done
cargo build --release --quiet
V=$PWD/target/release/vqm
# the same pairs, one plain vqm process each, one after another
seq_script="$work/sequential.sh"
{
  echo "set -e"
  tail -n +2 "$manifest" | while IFS=, read -r id r d; do echo "$V $r $d -m psnr,ssim -q"; done
} > "$seq_script"
hyperfine -w 1 -r 5 --export-markdown "$work/batch.md" --export-json "$work/batch.json" \
  --prepare "rm -rf $work/out" \
  -n "12 vqm runs, one after another" "bash $seq_script" \
  -n "vqm batch --jobs 1" "$V batch $manifest --out $work/out -m psnr,ssim -q --jobs 1" \
  -n "vqm batch --jobs 2" "$V batch $manifest --out $work/out -m psnr,ssim -q --jobs 2" \
  -n "vqm batch --jobs 2 --threads 1" "$V batch $manifest --out $work/out -m psnr,ssim -q --jobs 2 --threads 1"
# CPU seconds (user + system of the process and its children), median of 3
cpu() { for _ in 1 2 3; do rm -rf "$work/out"; /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; done | sort -n | sed -n 2p; }
shards() { "$V" batch "$manifest" --out "$work/out" -m psnr,ssim -q --jobs 2 --shard 0/2 && "$V" batch "$manifest" --out "$work/out" -m psnr,ssim -q --jobs 2 --shard 1/2; }
export -f shards; export V manifest work
echo "CPU s: one batch $(cpu "$V" batch "$manifest" --out "$work/out" -m psnr,ssim -q --jobs 2)," \
  "2 shards $(cpu bash -c shards)," \
  "12 runs $(cpu bash "$seq_script")"
