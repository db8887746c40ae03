#!/usr/bin/env python3
"""Golden per-frame values for the fidelity tests, from independent
implementations (never from vqm's own output):

  * psnr_* / mse_*: FFmpeg's own `psnr` filter, read from its frame metadata
    (`metadata=mode=print`), which FFmpeg stores as float32 printed with %f;
    psnr_yuv611 = (6 psnr_y + psnr_u + psnr_v) / 8 of FFmpeg's values.
  * ssim_* (gaussian): scikit-image `structural_similarity(gaussian_weights=
    True, sigma=1.5, use_sample_covariance=False, data_range=peak)` per
    plane; ssim_all weights planes by their share of samples (SPEC).
  * ssim_* (ffmpeg mode): FFmpeg's `ssim` filter, from its stats_file, run
    with `-cpuflags 0` so FFmpeg uses the filter's portable C code. (FFmpeg
    5.1's x86 SIMD path for 8-bit planes gives other values when a plane's
    width/4 is not a multiple of 4; both are recorded, see README.)
  * ssim_* (zero-pad mode): the PyTorch SSIM recipe written with scipy:
    11x11 Gaussian (sigma 1.5) correlation with zero padding, full map mean.
  * ms_ssim_*: the authors' MATLAB msssim.m procedure written with scipy:
    Gaussian SSIM/cs over the valid region at 5 scales, 2x2 mean with
    symmetric extension between scales, clamped at 0, published weights.
  * mae, smooth_l1 (torch formula), bce (torch BCELoss, logs clamped at
    -100), entropy / kl / xent on 256-bin histograms: numpy.

Frames are decoded to raw planes by the ffmpeg CLI.

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
from scipy import ndimage
from skimage.metrics import structural_similarity

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
OUT = os.path.join(HERE, "golden")

# clip name -> (pix_fmt, bit depth, (log2 chroma w, log2 chroma h))
CLIPS = {
    "c420": ("yuv420p", 8, (1, 1)),
    "c444odd": ("yuv444p", 8, (0, 0)),
    "c422p10": ("yuv422p10le", 10, (1, 0)),
    "c444p10odd": ("yuv444p10le", 10, (0, 0)),
}
MS_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
SMOOTH_L1_SMALL_BETA = 0.02


def gaussian_window():
    x = np.arange(11) - 5.0
    g = np.exp(-(x ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    return np.outer(g, g)


def ssim_cs_valid(a, b, peak):
    """Mean SSIM and mean cs over the valid region (MATLAB 'valid')."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    w = gaussian_window()
    f = lambda z: ndimage.correlate(z, w, mode="reflect")[5:-5, 5:-5]
    ux, uy = f(a), f(b)
    vx = f(a * a) - ux * ux
    vy = f(b * b) - uy * uy
    vxy = f(a * b) - ux * uy
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    ssim = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs
    return ssim.mean(), cs.mean()


def downsample(z):
    h, w = z.shape
    z = np.pad(z, ((0, h % 2), (0, w % 2)), mode="symmetric")
    return (z[0::2, 0::2] + z[0::2, 1::2] + z[1::2, 0::2] + z[1::2, 1::2]) / 4.0


def ms_ssim(a, b, peak):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    cs_vals = []
    for scale in range(5):
        s, cs = ssim_cs_valid(a, b, peak)
        if scale < 4:
            cs_vals.append(cs)
            a, b = downsample(a), downsample(b)
    v = 1.0
    for c, w in zip(cs_vals, MS_WEIGHTS[:4]):
        v *= max(c, 0.0) ** w
    return v * max(s, 0.0) ** MS_WEIGHTS[4]


def ssim_zero_pad(a, b, peak):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    w = gaussian_window()
    f = lambda z: ndimage.correlate(z, w, mode="constant", cval=0.0)
    ux, uy = f(a), f(b)
    vx = f(a * a) - ux * ux
    vy = f(b * b) - uy * uy
    vxy = f(a * b) - ux * uy
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    m = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return m.mean()


def smooth_l1(r, d, peak, beta):
    x = np.abs(d.astype(np.float64) / peak - r.astype(np.float64) / peak)
    return np.where(x < beta, 0.5 * x * x / beta, x - 0.5 * beta).mean()


def bce(r, d, peak):
    y = r.astype(np.float64) / peak
    p = d.astype(np.float64) / peak
    with np.errstate(divide="ignore"):
        lp = np.maximum(np.log(p), -100.0)
        l1p = np.maximum(np.log(1.0 - p), -100.0)
    return (-(y * lp + (1.0 - y) * l1p)).mean()


def hist(z, depth):
    return np.bincount((z.astype(np.int64) >> (depth - 8)).ravel(), minlength=256)[:256]


def ffmpeg_ssim(ref, dist, portable=True):
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "ssim.txt")
        flags = ["-cpuflags", "0"] if portable else []
        subprocess.check_call(
            ["ffmpeg", "-nostdin", "-v", "error"] + flags + ["-i", dist, "-i", ref,
             "-lavfi", f"[0:v][1:v]ssim=stats_file={stats}", "-f", "null", "-"])
        frames = []
        for line in open(stats):
            vals = dict(re.findall(r"(\w+):([-0-9.]+)", line))
            frames.append({"ssim_y": float(vals["Y"]), "ssim_u": float(vals["U"]),
                           "ssim_v": float(vals["V"]), "ssim_all": float(vals["All"])})
        return frames


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
        ff_ssim = ffmpeg_ssim(ref, dist)
        ff_ssim_simd = ffmpeg_ssim(ref, dist, portable=False)
        assert len(rf) == len(df) == len(psnr) == len(ff_ssim)
        frames, zero_pad, small_beta = [], [], []
        for i, (rp, dp) in enumerate(zip(rf, df)):
            rec = dict(psnr[i])
            rec["psnr_yuv611"] = (6 * rec["psnr_y"] + rec["psnr_u"] + rec["psnr_v"]) / 8
            total = sum(p.size for p in rp)
            all_, zall = 0.0, 0.0
            zrec, brec = {}, {}
            for key, a, b in zip("yuv", rp, dp):
                s = structural_similarity(
                    a, b, gaussian_weights=True, sigma=1.5,
                    use_sample_covariance=False, data_range=peak)
                rec[f"ssim_{key}"] = float(s)
                all_ += float(s) * a.size / total
                z = float(ssim_zero_pad(a, b, peak))
                zrec[f"ssim_{key}"] = z
                zall += z * a.size / total
                rec[f"ms_ssim_{key}"] = float(ms_ssim(a, b, peak))
                rec[f"mae_{key}"] = float(np.abs(a.astype(np.int64) - b.astype(np.int64)).mean())
                rec[f"smooth_l1_{key}"] = float(smooth_l1(a, b, peak, 1.0))
                brec[f"smooth_l1_{key}"] = float(smooth_l1(a, b, peak, SMOOTH_L1_SMALL_BETA))
                rec[f"bce_{key}"] = float(bce(a, b, peak))
                hr, hd = hist(a, depth), hist(b, depth)
                n = a.size
                p = hr / n
                q = (hd + 1) / (n + 256)
                pd = hd / n
                nz = p > 0
                rec[f"entropy_ref_{key}"] = float(-(p[nz] * np.log(p[nz])).sum())
                rec[f"entropy_dist_{key}"] = float(-(pd[pd > 0] * np.log(pd[pd > 0])).sum())
                rec[f"kl_{key}"] = float((p[nz] * np.log(p[nz] / q[nz])).sum())
                rec[f"xent_{key}"] = float(-(p[nz] * np.log(q[nz])).sum())
            rec["ssim_all"] = all_
            zrec["ssim_all"] = zall
            frames.append(rec)
            zero_pad.append(zrec)
            small_beta.append(brec)
        doc = {
            "clip": name,
            "pix_fmt": pix_fmt,
            "generator": "tests/golden.py (FFmpeg psnr filter metadata; "
                         "scikit-image structural_similarity)",
            "psnr_global": pooled,
            "frames": frames,
            "ssim_ffmpeg": ff_ssim,
            "ssim_ffmpeg_default_cpuflags": ff_ssim_simd,
            "ssim_zero_pad": zero_pad,
            "smooth_l1_small_beta": SMOOTH_L1_SMALL_BETA,
            "smooth_l1_small_beta_frames": small_beta,
        }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(doc, f, indent=1)
        print(f"{name}: {len(frames)} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
