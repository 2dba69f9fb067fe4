#!/usr/bin/env python3
"""Benchmark: the memory of attaching a capture to a LogRhythm case (issue 14).

    python bench/case_bench.py [--sizes 20,200] [--workdir DIR] [--keep]

For each size (MB) it writes a classic pcap of that size (one conversation), starts the
LogRhythm simulator (srp.simulators.logrhythm, in this process, HTTPS on loopback), and runs
`srp-pcap attach --case new --alarm-id N CAPTURE` in a fresh child whose peak RSS is
measured (merge_bench.py's RssMeter: GNU time, else a wait4 wrapper). The upload streams
from the disk, so the peak must stay flat: the largest size's peak within FLAT_TOLERANCE of
the smallest's. Each run is checked: exit 0, the case holds one file whose bytes hash to the
capture's SHA-256.

Needs the bench extra (pip install -e '.[bench]'). Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

# merge_bench.py's helpers (machine description, RSS meter, formatting), imported, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from merge_bench import (  # noqa: E402
    BASE_SEC,
    FLAT_TOLERANCE,
    MB,
    PCAP_GLOBAL,
    PCAP_REC,
    RssMeter,
    find_srp,
    fmt_mb,
    host_lines,
    in_private_workdir,
    say,
    sha256,
)

TOKEN = "bench-lr-token-5a0e1c"
ALARM_ID = 7001


def write_capture(path: Path, size: int) -> None:
    """A classic pcap of about `size` bytes: one TCP conversation's full-size frames with
    random payloads (a summary of random frames would hold one conversation per packet, and
    measure the summary instead of the upload)."""
    rng = random.Random(14)
    payload = rng.randbytes(1 << 20)
    header = bytes.fromhex(
        "02000000000102000000000208004500" "05dc0000400040060000c0000201c633"
        "6401c35001bb00000001000000015010" "ffff00000000")             # 54 bytes
    frame_payload = 1514 - len(header)
    with path.open("wb") as file:
        file.write(PCAP_GLOBAL)
        for number in range(size // (PCAP_REC.size + 1514)):
            offset = rng.randrange(len(payload) - frame_payload)
            file.write(PCAP_REC.pack(BASE_SEC + number // 1000, number % 1000 * 1000, 1514,
                                     1514))
            file.write(header)
            file.write(payload[offset:offset + frame_payload])


def attach_once(meter: RssMeter, srp: list[str], capture: Path, size_mb: int) -> dict:
    from srp.simulators.logrhythm import AlarmSpec, LogRhythmSimulator

    with LogRhythmSimulator([AlarmSpec(ALARM_ID)], token=TOKEN, complete_after=0.0,
                            max_upload=4 << 30) as lr:
        started = time.perf_counter()
        result = meter.measure([*srp, "attach", str(capture), "--case", "new", "--alarm-id",
                                str(ALARM_ID), "--lr-address", lr.url, "--lr-token", TOKEN,
                                "--lr-ca-bundle", str(lr.ca_bundle), "--case-max-bytes", "1G"])
        wall = time.perf_counter() - started
        problem = None
        if result["rc"] != 0:
            problem = f"exit {result['rc']}: {result['stderr'][-200:]}"
        else:
            (case,) = lr.cases()
            files = [item for item in lr.evidence(case["id"]) if item["type"] == "file"]
            if len(files) != 1:
                problem = f"{len(files)} files in the case"
            elif sha256(lr.uploaded_path(case["id"], files[0]["number"])) != sha256(capture):
                problem = "the uploaded bytes differ from the capture"
    say(f"  {size_mb:>5} MB: peak RSS {fmt_mb(result['maxrss_kb']):>8s}, {wall:6.2f} s"
        f"{'' if problem is None else f'  PROBLEM: {problem}'}")
    return {"size_mb": size_mb, "kb": result["maxrss_kb"] if problem is None else None,
            "wall": wall}


def run(root: Path, sizes: list[int]) -> None:
    srp = find_srp()
    meter = RssMeter(root)
    for line in host_lines():
        say(line)
    say(f"srp-pcap: {' '.join(srp)}; RSS: {meter.method}, floor {fmt_mb(meter.floor_kb)}")
    say(f"work dir: {root}")
    say("")
    say("srp-pcap attach --case new (a new case, the alarm added, the capture uploaded):")
    results = []
    for size in sizes:
        capture = root / f"capture-{size}mb.pcap"
        write_capture(capture, size * MB)
        results.append(attach_once(meter, srp, capture, size))
        capture.unlink()
    good = [r for r in results if r["kb"] is not None]
    if len(good) >= 2:
        low, high = good[0], good[-1]
        growth = high["kb"] / low["kb"] - 1
        say("")
        say(f"peak RSS at {high['size_mb']} MB vs {low['size_mb']} MB: {growth:+.1%} "
            f"({'flat' if growth <= FLAT_TOLERANCE else 'NOT flat'}: the goal is at most "
            f"{FLAT_TOLERANCE:+.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200",
                        help="capture sizes in MB, comma-separated (default 20,200)")
    parser.add_argument("--workdir", type=Path,
                        default=Path("/dev/shm/srp-case-bench") if Path("/dev/shm").is_dir()
                        else Path("srp-case-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    return in_private_workdir(args.workdir, args.keep, lambda root: run(root, sizes))


if __name__ == "__main__":
    sys.exit(main())
