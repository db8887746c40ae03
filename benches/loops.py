#!/usr/bin/env python3
"""Instruction mix of the inner loops of one function of a binary.

Usage: benches/loops.py BINARY FUNCTION [MIN_LEN]
  e.g. benches/loops.py target/release/vqm vqm::metrics::ssim_f32::band_avx512

Disassembles BINARY (objdump -d -C), takes the first function whose name is
FUNCTION, and prints every backward jump that closes a loop of at least
MIN_LEN (default 20) instructions: its address range, its length and its
most frequent instructions. What BENCHMARKS.md's operation counts of the
Gaussian kernel come from.
"""
import collections
import re
import subprocess
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, name = sys.argv[1], sys.argv[2]
    min_len = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", binary],
        check=True, capture_output=True, text=True).stdout.splitlines()
    head = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    start = next((i for i, l in enumerate(out)
                  if (m := head.match(l)) and m.group(1) == name), None)
    if start is None:
        sys.exit(f"{name}: not found in {binary}")
    addr, ins = [], []
    for line in out[start + 1:]:
        if head.match(line):
            break
        m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)", line)
        if m:
            addr.append(int(m.group(1), 16))
            ins.append((m.group(2), m.group(3)))
    at = {a: i for i, a in enumerate(addr)}
    for i, (op, arg) in enumerate(ins):
        m = re.match(r"([0-9a-f]+)", arg) if op.startswith("j") else None
        if not m:
            continue
        target = int(m.group(1), 16)
        if target in at and at[target] < i and i - at[target] + 1 >= min_len:
            body = ins[at[target]:i + 1]
            mix = collections.Counter(o for o, _ in body).most_common(12)
            print(f"{target:#x}..{addr[i]:#x} len {len(body)}: "
                  + ", ".join(f"{o} {n}" for o, n in mix))


if __name__ == "__main__":
    main()
