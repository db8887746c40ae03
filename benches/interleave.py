#!/usr/bin/env python3
"""Runs commands in turn, round after round (A B C, A B C, ...), so that the
machine's drift falls on every command alike; prints each command's median
wall and CPU time and each one's median ratio to the first, taken round by
round. Usage: benches/interleave.py ROUNDS 'cmd A' 'cmd B' ..."""
import os
import resource
import statistics
import subprocess
import sys
import time

rounds = int(sys.argv[1])
cmds = sys.argv[2:]
wall = [[] for _ in cmds]
cpu = [[] for _ in cmds]
for r in range(rounds + 1):  # the first round warms up
    for i, c in enumerate(cmds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run(c, shell=True, check=True, stdout=subprocess.DEVNULL)
        t = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r > 0:
            wall[i].append(t)
            cpu[i].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
for i, c in enumerate(cmds):
    ratios = [w / w0 for w, w0 in zip(wall[i], wall[0])]
    cratios = [x / x0 for x, x0 in zip(cpu[i], cpu[0])]
    print(f"{c[:70]:70} wall median {statistics.median(wall[i]):.3f} s"
          f" (ratio {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}),"
          f" CPU median {statistics.median(cpu[i]):.3f} s (ratio {statistics.median(cratios):.3f})")
