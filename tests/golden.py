#!/usr/bin/env python3
"""Golden per-frame values for the fidelity tests, from independent
implementations:

  * psnr_* / mse_*: FFmpeg's own `psnr` filter, read from its frame metadata
    (`metadata=mode=print`), which FFmpeg stores as float32 printed with %f.
  * ssim_*: scikit-image `structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=peak)` per plane, on
    frames decoded to raw planes by the ffmpeg CLI; ssim_all weights planes
    by their share of samples (SPEC).

Usage: python3 tests/golden.py   (writes tests/golden/<clip>.json)
Needs: ffmpeg, numpy, scikit-image.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from skimage.metrics import structural_similarity

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
OUT = os.path.join(HERE, "golden")

# clip name -> (pix_fmt, bit depth, (log2 chroma w, log2 chroma h))
CLIPS = {
    "c420": ("yuv420p", 8, (1, 1)),
    "c444odd": ("yuv444p", 8, (0, 0)),
    "c422p10": ("yuv422p10le", 10, (1, 0)),
}


def probe_size(path):
    out = subprocess.check_output(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", path], text=True)
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def read_planes(path, pix_fmt, depth, sub):
    w, h = probe_size(path)
    raw = subprocess.check_output(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "rawvideo",
         "-pix_fmt", pix_fmt, "-"])
    dtype = np.uint8 if depth <= 8 else np.dtype("<u2")
    cw = -(-w >> sub[0])
    ch = -(-h >> sub[1])
    sizes = [(h, w), (ch, cw), (ch, cw)]
    per_frame = sum(a * b for a, b in sizes)
    data = np.frombuffer(raw, dtype=dtype)
    n = data.size // per_frame
    frames = []
    for i in range(n):
        chunk = data[i * per_frame:(i + 1) * per_frame]
        planes, off = [], 0
        for (ph, pw) in sizes:
            planes.append(chunk[off:off + ph * pw].reshape(ph, pw))
            off += ph * pw
        frames.append(planes)
    return frames


def ffmpeg_psnr(ref, dist):
    with tempfile.TemporaryDirectory() as tmp:
        meta = os.path.join(tmp, "psnr.txt")
        log = subprocess.run(
            ["ffmpeg", "-nostdin", "-hide_banner", "-v", "info", "-i", dist,
             "-i", ref, "-lavfi",
             f"[0:v][1:v]psnr,metadata=mode=print:file={meta}",
             "-f", "null", "-"], check=True, capture_output=True, text=True)
        # FFmpeg's own pooled figure: PSNR of the mean MSE per plane.
        g = re.search(r"PSNR y:(\S+) u:(\S+) v:(\S+) average:(\S+)",
                      log.stderr)
        pooled = {k: float(v) for k, v in zip(["y", "u", "v", "avg"],
                                                g.groups())}
        frames = []
        cur = None
        for line in open(meta):
            line = line.strip()
            if line.startswith("frame:"):
                cur = {}
                frames.append(cur)
                continue
            m = re.match(r"lavfi\.psnr\.(mse|psnr)(?:\.(\w)|_(avg))=(\S+)", line)
            if m and cur is not None:
                kind, plane, avg, val = m.groups()
                key = f"{kind}_{plane or avg}"
                cur[key] = float(val)
        return frames, pooled


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (pix_fmt, depth, sub) in CLIPS.items():
        ref = os.path.join(FIX, f"{name}.ref.mkv")
        dist = os.path.join(FIX, f"{name}.dist.mkv")
        peak = (1 << depth) - 1
        rf = read_planes(ref, pix_fmt, depth, sub)
        df = read_planes(dist, pix_fmt, depth, sub)
        psnr, pooled = ffmpeg_psnr(ref, dist)
        assert len(rf) == len(df) == len(psnr), (len(rf), len(df), len(psnr))
        frames = []
        for i, (rp, dp) in enumerate(zip(rf, df)):
            rec = dict(psnr[i])
            total = sum(p.size for p in rp)
            all_ = 0.0
            for key, a, b in zip("yuv", rp, dp):
                s = structural_similarity(
                    a, b, gaussian_weights=True, sigma=1.5,
                    use_sample_covariance=False, data_range=peak)
                rec[f"ssim_{key}"] = float(s)
                all_ += float(s) * a.size / total
            rec["ssim_all"] = all_
            frames.append(rec)
        doc = {
            "clip": name,
            "pix_fmt": pix_fmt,
            "generator": "tests/golden.py (FFmpeg psnr filter metadata; "
                         "scikit-image structural_similarity)",
            "psnr_global": pooled,
            "frames": frames,
        }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(doc, f, indent=1)
        print(f"{name}: {len(frames)} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
