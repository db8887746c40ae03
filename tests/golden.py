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

Frames are decoded to raw planes by the ffmpeg CLI. Plane keys follow vqm's
records: y u v for YUV clips, r g b for the planar RGB clip (FFmpeg's gbrp
stores G, B, R; key r is the R plane, as FFmpeg's psnr and ssim filters
name it too), y alone for gray. psnr_yuv611 exists for YUV clips only.
FFmpeg's per-plane MSE is checked against numpy's on the same decoded
planes (so a plane put under the wrong key fails here).

Cross-checks, run on every generation and never at test time (they need
torch and pytorch_msssim; nothing they compute enters the JSON files,
their largest differences go to stderr and the run fails past the bounds):
  * torch itself, float64 tensors, on every plane of every frame of every
    clip: F.binary_cross_entropy(dist/peak, ref/peak) against bce();
    F.smooth_l1_loss(dist/peak, ref/peak, beta) against smooth_l1() at
    beta 1 and the small beta; the common PyTorch SSIM code (F.conv2d with
    the 11x11 Gaussian window, sigma 1.5, padding=5, images /peak,
    C1 = 0.01^2, C2 = 0.03^2, mean of the map) against ssim_zero_pad().
    Bound 1e-9. Found (torch 2.15.0, 69 planes): bce 2.2e-16, smooth_l1
    2.2e-19 (beta 1) and 3.5e-18 (beta 0.02), zero-pad SSIM 1.7e-13 (the
    largest at 12 bit: the recipe works on values /peak, ssim_zero_pad()
    on code values with C1, C2 scaled by peak^2).
  * pytorch_msssim.ms_ssim(X, Y, data_range=peak, size_average=True,
    win_size=11, win_sigma=1.5, K=(0.01, 0.03)), float64, against
    ms_ssim(), on crops whose sides are multiples of 16 and above 160 (the
    top-left and bottom-right crops of each plane that has them: the luma of
    c420 and c420p12). There its 2x2 avg_pool2d sees even sizes at every
    scale and equals msssim.m's 2x2 mean; on odd sizes it pads a zero row/
    column on both sides (count_include_pad) where msssim.m extends
    symmetrically, so it is not compared there. Otherwise its definition is
    SPEC's: 'valid' separable Gaussian filtering, population moments, relu
    (clamp at 0) on the per-plane mean cs at scales 1-4 and on the mean SSIM
    at scale 5, the published weights. Its default window is built in
    float32 and cast to float64; it is run both so (bound 1e-6; found
    2.1e-7) and with the same Gaussian built in float64 through its `win`
    argument (bound 1e-9; found 2.4e-14), on 14 crops (pytorch-msssim
    1.0.0).

Usage: python3 tests/golden.py   (writes tests/golden/<clip>.json)
Needs: ffmpeg (the CLI) and the packages of tests/requirements-golden.txt:
  python3 -m venv /path/to/venv
  /path/to/venv/bin/pip install -r tests/requirements-golden.txt
  /path/to/venv/bin/python tests/golden.py
(PyPI's torch wheel for Linux brings its CUDA libraries, ~5 GB; the
cross-checks run on the CPU.)
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

try:
    import torch
    import torch.nn.functional as F
    from pytorch_msssim import ms_ssim as pt_ms_ssim
except ImportError as e:  # the cross-checks are part of every generation
    sys.exit(f"tests/golden.py: {e}; the cross-checks need torch and "
             "pytorch_msssim: pip install -r tests/requirements-golden.txt "
             "(in a venv)")

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
OUT = os.path.join(HERE, "golden")

# clip name -> (pix_fmt, bit depth, (log2 chroma w, log2 chroma h))
CLIPS = {
    "c420": ("yuv420p", 8, (1, 1)),
    "c444odd": ("yuv444p", 8, (0, 0)),
    "c422p10": ("yuv422p10le", 10, (1, 0)),
    "c444p10odd": ("yuv444p10le", 10, (0, 0)),
    "c420p12": ("yuv420p12le", 12, (1, 1)),
    "cgbrpodd": ("gbrp", 8, (0, 0)),
    "cgrayodd": ("gray", 8, (0, 0)),
}


def layout(pix_fmt):
    """(record key, index of FFmpeg's raw plane) in record order."""
    if pix_fmt.startswith("gbrp"):
        return [("r", 2), ("g", 0), ("b", 1)]  # FFmpeg stores G, B, R
    if pix_fmt.startswith("gray"):
        return [("y", 0)]
    return [("y", 0), ("u", 1), ("v", 2)]


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
            # "n:1 Y:… U:… V:… All:… (…)"; R G B All for RGB, Y All for gray
            frames.append({f"ssim_{k.lower()}": float(v)
                           for k, v in re.findall(r"(\w+):([-0-9.]+)", line)
                           if k != "n"})
        return frames


def probe_size(path):
    out = subprocess.check_output(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", path], text=True)
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def read_planes(path, pix_fmt, depth, sub):
    """Per frame, the planes in record order (see layout())."""
    w, h = probe_size(path)
    raw = subprocess.check_output(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "rawvideo",
         "-pix_fmt", pix_fmt, "-"])
    dtype = np.uint8 if depth <= 8 else np.dtype("<u2")
    cw = -(-w >> sub[0])
    ch = -(-h >> sub[1])
    order = layout(pix_fmt)
    sizes = [(h, w)] + [(ch, cw)] * (len(order) - 1)
    per_frame = sum(a * b for a, b in sizes)
    data = np.frombuffer(raw, dtype=dtype)
    assert data.size % per_frame == 0, f"{path}: raw size"
    n = data.size // per_frame
    frames = []
    for i in range(n):
        chunk = data[i * per_frame:(i + 1) * per_frame]
        planes, off = [], 0
        for (ph, pw) in sizes:
            planes.append(chunk[off:off + ph * pw].reshape(ph, pw))
            off += ph * pw
        frames.append([planes[j] for _, j in order])
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
        # "PSNR y:… u:… v:… average:… min:… max:…" (r g b, or y alone)
        g = re.search(r"PSNR ((?:\w+:\S+ )+)average:(\S+)", log.stderr)
        pooled = {k: float(v) for k, v in re.findall(r"(\w+):(\S+)", g.group(1))}
        pooled["avg"] = float(g.group(2))
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


def mse_agrees(ffmpeg_mse, a, b):
    """FFmpeg's MSE (float32, printed with %f) against numpy's."""
    m = float(((a.astype(np.int64) - b.astype(np.int64)) ** 2).mean())
    return abs(ffmpeg_mse - m) <= max(1e-6 * m, 6e-7)


# Cross-checks: torch and pytorch_msssim against the numpy/scipy code above.

def t64(z, peak=1):
    return torch.from_numpy(z.astype(np.float64) / peak)[None, None]


def torch_gauss_1d():
    x = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(x ** 2) / (2 * 1.5 ** 2))
    return g / g.sum()


def torch_ssim_zero_pad(a, b, peak):
    """The common PyTorch SSIM code (pytorch-ssim's _ssim), float64."""
    g = torch_gauss_1d()[:, None]
    window = (g @ g.t())[None, None]
    img1, img2 = t64(a, peak), t64(b, peak)
    mu1 = F.conv2d(img1, window, padding=5)
    mu2 = F.conv2d(img2, window, padding=5)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = F.conv2d(img1 * img1, window, padding=5) - mu1_sq
    sigma2_sq = F.conv2d(img2 * img2, window, padding=5) - mu2_sq
    sigma12 = F.conv2d(img1 * img2, window, padding=5) - mu1_mu2
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / \
        ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(m.mean())


def crops16(z):
    """Top-left and bottom-right crops with both sides multiples of 16 and
    above 160 (pytorch_msssim needs > 160; with multiples of 16 its 2x2
    average pooling sees even sizes at all 5 scales), or none."""
    h, w = z.shape
    ch, cw = h // 16 * 16, w // 16 * 16
    if min(ch, cw) <= 160:
        return []
    out = [(slice(0, ch), slice(0, cw))]
    if (ch, cw) != (h, w):
        out.append((slice(h - ch, h), slice(w - cw, w)))
    return out


class CrossCheck:
    BOUNDS = {"bce": 1e-9, "smooth_l1": 1e-9, "smooth_l1_small_beta": 1e-9,
              "ssim_zero_pad": 1e-9, "ms_ssim_pytorch_msssim": 1e-6,
              "ms_ssim_pytorch_msssim_f64_window": 1e-9}

    def __init__(self):
        self.worst = {k: (0.0, None) for k in self.BOUNDS}
        self.counts = {k: 0 for k in self.BOUNDS}

    def note(self, what, ours, theirs, where):
        d = abs(ours - theirs)
        self.counts[what] += 1
        if d >= self.worst[what][0]:
            self.worst[what] = (d, where)
        if not d <= self.BOUNDS[what]:
            sys.exit(f"cross-check FAILED: {what} at {where}: golden.py {ours!r} "
                     f"vs torch {theirs!r} (|diff| {d:.3g} > {self.BOUNDS[what]:g})")

    def plane(self, where, a, b, peak, rec, zrec, brec, key):
        y, p = t64(a, peak), t64(b, peak)
        self.note("bce", rec[f"bce_{key}"],
                  float(F.binary_cross_entropy(p, y)), where)
        self.note("smooth_l1", rec[f"smooth_l1_{key}"],
                  float(F.smooth_l1_loss(p, y, beta=1.0)), where)
        self.note("smooth_l1_small_beta", brec[f"smooth_l1_{key}"],
                  float(F.smooth_l1_loss(p, y, beta=SMOOTH_L1_SMALL_BETA)), where)
        self.note("ssim_zero_pad", zrec[f"ssim_{key}"],
                  torch_ssim_zero_pad(a, b, peak), where)
        win = torch_gauss_1d()[None, None, None]  # (C, 1, 1, 11), as its own
        for k, (sy, sx) in enumerate(crops16(a)):
            ca, cb = a[sy, sx], b[sy, sx]
            ours = float(ms_ssim(ca, cb, peak))
            at = f"{where} crop{k} {ca.shape[1]}x{ca.shape[0]}"
            X, Y = t64(cb), t64(ca)
            kw = dict(data_range=peak, size_average=True, win_size=11,
                      win_sigma=1.5, K=(0.01, 0.03))
            self.note("ms_ssim_pytorch_msssim", ours, float(pt_ms_ssim(X, Y, **kw)), at)
            self.note("ms_ssim_pytorch_msssim_f64_window", ours,
                      float(pt_ms_ssim(X, Y, win=win, **kw)), at)

    def report(self):
        print("cross-checks (largest |golden.py - torch| over all compared values):",
              file=sys.stderr)
        for k, (d, where) in self.worst.items():
            print(f"  {k:36s} {d:.3g}  over {self.counts[k]} values (at {where})",
                  file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    check = CrossCheck()
    for name, (pix_fmt, depth, sub) in CLIPS.items():
        ref = os.path.join(FIX, f"{name}.ref.mkv")
        dist = os.path.join(FIX, f"{name}.dist.mkv")
        peak = (1 << depth) - 1
        keys = [k for k, _ in layout(pix_fmt)]
        rf = read_planes(ref, pix_fmt, depth, sub)
        df = read_planes(dist, pix_fmt, depth, sub)
        psnr, pooled = ffmpeg_psnr(ref, dist)
        ff_ssim = ffmpeg_ssim(ref, dist)
        ff_ssim_simd = ffmpeg_ssim(ref, dist, portable=False)
        assert len(rf) == len(df) == len(psnr) == len(ff_ssim)
        frames, zero_pad, small_beta = [], [], []
        for i, (rp, dp) in enumerate(zip(rf, df)):
            rec = dict(psnr[i])
            assert [k for k in rec if k.startswith("mse_")] == \
                [f"mse_{k}" for k in keys] + ["mse_avg"], f"{name}: {rec}"
            if keys == ["y", "u", "v"]:
                rec["psnr_yuv611"] = (6 * rec["psnr_y"] + rec["psnr_u"] + rec["psnr_v"]) / 8
            assert set(ff_ssim[i]) == {f"ssim_{k}" for k in keys + ["all"]}, ff_ssim[i]
            total = sum(p.size for p in rp)
            all_, zall = 0.0, 0.0
            zrec, brec = {}, {}
            for key, a, b in zip(keys, rp, dp):
                assert mse_agrees(rec[f"mse_{key}"], a, b), \
                    f"{name} frame {i}: FFmpeg's mse_{key} is not this plane's"
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
                check.plane(f"{name} frame {i} {key}", a, b, peak, rec, zrec, brec, key)
            assert mse_agrees(rec["mse_avg"], np.concatenate([z.ravel() for z in rp]),
                              np.concatenate([z.ravel() for z in dp])), f"{name}: mse_avg"
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
    check.report()


if __name__ == "__main__":
    main()
