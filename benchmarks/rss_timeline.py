"""Benchmark helper: the resident memory of one command over time, beside its log lines.

Run::

    python benchmarks/rss_timeline.py [--every 0.2] [--step 0.05] -- python -m satgate_monai.infer --bundle B \
        --input ct.nii.gz --out OUT --device cpu --threads 2 --debug -v

The command runs as a child process; its RSS (``/proc/<pid>/status`` ``VmRSS``, Linux) is read every ``--every``
seconds and printed with the seconds since start whenever it moved by more than ``--step`` GB, interleaved with the
command's own output lines (stdout and stderr), so a peak can be placed between two log lines (the stages of the
CLI's ``--debug`` log). The last line is the peak RSS (GB) and the command's exit status; the exit status of this
script is the command's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time


def _rss_gb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1e6
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--every", type=float, default=0.2, help="seconds between RSS readings")
    p.add_argument("--step", type=float, default=0.05, help="print a reading when the RSS moved by more (GB)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command after --")
    t0 = time.time()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events: list[tuple[float, str]] = []
    peak = [0.0]

    def sample() -> None:
        last = None
        while child.poll() is None:
            rss = _rss_gb(child.pid)
            if rss is not None:
                peak[0] = max(peak[0], rss)
                if last is None or abs(rss - last) > args.step:
                    events.append((time.time() - t0, f"RSS {rss:.2f} GB"))
                    last = rss
            time.sleep(args.every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for line in child.stdout:  # type: ignore[union-attr]
        events.append((time.time() - t0, "| " + line.rstrip()))
    rc = child.wait()
    sampler.join()
    for t, text in sorted(events, key=lambda e: e[0]):
        print(f"{t:8.1f} s  {text}")
    print(f"peak RSS {peak[0]:.2f} GB; exit status {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
