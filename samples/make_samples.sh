#!/usr/bin/env bash
# Regenerates the bundled sample pair with the ffmpeg CLI:
#   ref.mp4  - 3 s of FFmpeg's testsrc2 pattern moving over a flat background, 640x360 25 fps,
#              H.264 at high quality (the reference)
#   dist.mp4 - the same pictures encoded at a low bitrate (the distorted)
#   ladder/r360.mp4, r270.mp4, r180.mp4 - ref.mp4 encoded as a 3-rung ladder
#              (640x360 at 300 kb/s, 480x270 at 160 kb/s, 320x180 at 80 kb/s)
# Usage: samples/make_samples.sh [output-dir]        (everything)
#        samples/make_samples.sh [output-dir] ladder (the ladder only, from ref.mp4)
set -euo pipefail
out="${1:-$(dirname "$0")}"
ladder() {
  mkdir -p "$out/ladder"
  for rung in "640:360 300k r360" "480:270 160k r270" "320:180 80k r180"; do
    set -- $rung
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$out/ref.mp4" -vf "scale=$1" \
      -c:v libx264 -preset fast -b:v "$2" -maxrate "$2" -bufsize "$2" -g 50 -pix_fmt yuv420p \
      -movflags +faststart "$out/ladder/$3.mp4"
  done
  ls -l "$out/ladder"
}
if [ "${2:-}" = ladder ]; then
  ladder
  exit 0
fi
src="color=c=0x203040:s=640x360:r=25:d=3[bg];testsrc2=s=320x180:r=25:d=3[fg];[bg][fg]overlay=x='40+t*80':y='30+t*40'[o];[o]format=yuv420p"
ffmpeg -nostdin -hide_banner -loglevel error -y -filter_complex "$src" \
  -c:v libx264 -preset slow -crf 20 -g 25 -bf 2 -pix_fmt yuv420p -movflags +faststart "$out/ref.mp4"
ffmpeg -nostdin -hide_banner -loglevel error -y -i "$out/ref.mp4" \
  -c:v libx264 -preset fast -b:v 250k -maxrate 300k -bufsize 300k -g 50 -pix_fmt yuv420p \
  -movflags +faststart "$out/dist.mp4"
ls -l "$out/ref.mp4" "$out/dist.mp4"
ladder
