#!/usr/bin/env python3
"""Benchmark `srp.summary.summarize` on a capture of about a million packets.

    python bench/summary_bench.py [--packets N] [--repeat N] [--workdir DIR] [--keep]

Prints figures (the machine, every timed run, and a markdown table with the issue's goal
next to the measured one). It asserts nothing: it is a measuring tool, not a test.

The capture (classic pcap, Ethernet, on tmpfs; default /dev/shm/srp-summary-bench, a private
directory made inside it and removed at the end) is what a large alarm's merged result looks
like: NetMon-like sessions from srp.simulators.traffic (a DNS lookup, an HTTP download, a
TLS connection naming its server), about a fifth of them over IPv6, interleaved in time over
an hour. Building a million frames with scapy would take minutes, so 64 sessions are built
with scapy as templates and every session of the capture is a template copied with its own
client address and start time (the copies' IP checksums are left stale: nothing here reads
them). About 3,500 sessions, 10,500 conversations.

A second capture of the same size holds a port scan: every packet a conversation of its own,
the worst case for the per-conversation tables.

Timed, best of --repeat, each in this process:
- the reader alone (every record read, nothing done with it): the floor;
- `summarize(path)`: the whole summary (header pass, names, SHA-256 of the file);
- `summarize(path, sha256=...)`: as a retrieval calls it, which has hashed the file already;
and once, the command a user runs: `srp-pcap summary FILE` as a child process, with its peak
RSS (merge_bench.py's meter).
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import random
import struct
import sys
import time
from pathlib import Path

# merge_bench.py's helpers (machine description, formatting), imported, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from merge_bench import (  # noqa: E402
    MB,
    RssMeter,
    find_srp,
    fmt_mb,
    fmt_s,
    fs_type,
    host_lines,
    in_private_workdir,
    load,
    say,
)

GOAL_SECONDS = 5.0      # the issue: summarizing 1M packets "adds at most a few seconds"
TEMPLATES = 64
IPV6_SHARE = 0.2
HOUR_NS = 3600 * 10**9
START_NS = 1_763_800_000 * 10**9


def _templates(rng: random.Random) -> list[tuple[bytes, list[tuple[int, bytes]]]]:
    """(the client's packed address, [(time from the session's start, frame)]) per template."""
    from srp.simulators.traffic import Conversation

    templates = []
    for index in range(TEMPLATES):
        ipv6 = index < TEMPLATES * IPV6_SHARE
        client = "2001:db8:1::10" if ipv6 else "10.1.0.10"
        server = f"2001:db8:2::{index + 1:x}" if ipv6 else f"203.0.113.{index + 1}"
        session = Conversation(domain=f"host{index}.example{index % 7}.com", start_ns=0,
                               client_ip=client, server_ip=server,
                               payload_packets=rng.randint(20, 300), seed=index)
        templates.append((ipaddress.ip_address(client).packed, list(session.frames())))
    return templates


def _client_address(packed_template: bytes, number: int) -> bytes:
    if len(packed_template) == 4:
        return struct.pack("!BBH", 10, 2 + (number >> 16), number & 0xFFFF)
    return packed_template[:8] + struct.pack("!Q", 0x1000 + number)


def session_frames(packets: int, seed: int = 7):
    """Frames (timestamp ns, bytes) of sessions copied from templates, in time order."""
    rng = random.Random(seed)
    templates = _templates(rng)
    mean = sum(len(frames) for _, frames in templates) / len(templates)
    sessions = []
    for number in range(int(packets / mean)):
        client, frames = rng.choice(templates)
        sessions.append(_copied(frames, client, _client_address(client, number),
                                START_NS + rng.randrange(HOUR_NS)))
    return heapq.merge(*sessions, key=lambda frame: frame[0])


def _copied(frames, client: bytes, new_client: bytes, start_ns: int):
    for offset_ns, frame in frames:
        yield start_ns + offset_ns, frame.replace(client, new_client)


def scan_frames(packets: int, seed: int = 11):
    """A SYN scan: one Ethernet/IPv4/TCP packet per (target, port), 10 us apart."""
    rng = random.Random(seed)
    ethernet = rng.randbytes(12) + b"\x08\x00"
    scanner = bytes([192, 0, 2, 66])
    for number in range(packets):
        target = struct.pack("!BBH", 10, 9, number >> 16)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, number & 0xFFFF, 0, 64, 6, 0,
                         scanner, target)
        tcp = struct.pack("!HHIIBBHHH", 40000 + (number & 0xFF), number & 0xFFFF or 1,
                          number, 0, 0x50, 0x02, 1024, 0, 0)
        yield START_NS + number * 10_000, ethernet + ip + tcp + bytes(6)


def write(path: Path, frames) -> int:
    from srp.simulators.capfile import LINKTYPE_ETHERNET, write_capture

    return write_capture(path, frames, linktype=LINKTYPE_ETHERNET).packets


def read_only(path: Path) -> None:
    from srp.capture import open_capture
    from srp.summary import READ_BUDGET

    with open_capture(path) as reader:
        while (records := reader.read_batch(READ_BUDGET)) is not None:
            for _record in records:
                pass


def best_of(repeat: int, run) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def describe(times: list[float]) -> str:
    return f"best {min(times):6.2f} s   runs {' '.join(f'{t:.2f}' for t in times)}"


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows: list[list[str]] = []

    def capture(self, root: Path, name: str, frames) -> Path:
        path = root / f"{name}.pcap"
        t0 = time.perf_counter()
        packets = write(path, frames)
        say(f"\n## {name}: {packets:,} packets, {path.stat().st_size / MB:.0f} MB "
            f"(written in {time.perf_counter() - t0:.0f} s)")
        return path

    def measure(self, path: Path, name: str) -> None:
        from srp.summary import summarize

        repeat = self.args.repeat
        floor, times, _ = best_of(repeat, lambda: read_only(path))
        say(f"  reader alone           {describe(times)}")
        whole, times, summary = best_of(repeat, lambda: summarize(path))
        say(f"  summarize(path)        {describe(times)}")
        known, times, _ = best_of(repeat, lambda: summarize(path, sha256=summary.sha256))
        say(f"  summarize(path, sha256) {describe(times)}")
        cli = RssMeter(path.parent).measure([*find_srp(), "summary", str(path)])
        say(f"  srp-pcap summary FILE  {fmt_s(cli['wall'])}, peak RSS {fmt_mb(cli['maxrss_kb'])} "
            f"(exit {cli['rc']})")
        say(f"  found: {summary.packets:,} packets, {summary.conversation_count:,} "
            f"conversations, {summary.dns.distinct} DNS names, {summary.tls.distinct} TLS "
            f"names; warnings: {summary.warnings}")
        met = "yes" if whole <= GOAL_SECONDS else "**no**"
        self.rows.append([name, f"{summary.packets:,}", f"{summary.conversation_count:,}",
                          fmt_s(floor), fmt_s(known), fmt_s(whole), fmt_s(cli["wall"]),
                          fmt_mb(cli["maxrss_kb"]), f"<= {GOAL_SECONDS:.0f} s", met])

    def run(self, root: Path) -> None:
        say("# srp-pcap summary benchmark")
        for line in host_lines():
            say(f"- {line}")
        say(f"- work dir: {root} (filesystem: {fs_type(root)}); best of {self.args.repeat}; "
            f"load average at start: {load()}")
        packets = self.args.packets
        for name, frames in (("sessions", session_frames(packets)),
                             ("scan", scan_frames(packets))):
            path = self.capture(root, name, frames)
            self.measure(path, name)
            if not self.args.keep:
                path.unlink()
        say(f"\n(load average at end: {load()})\n\n## README table\n")
        head = ["Capture", "Packets", "Conversations", "Reader alone", "Summary (hash known)",
                "Summary", "`srp-pcap summary`", "Peak RSS", "Goal", "Met"]
        say("| " + " | ".join(head) + " |")
        say("|" + "|".join("---" for _ in head) + "|")
        for row in self.rows:
            say("| " + " | ".join(row) + " |")
        say("\nWall time, best of the runs, in one process on tmpfs (the CLI: one run, with "
            "its start-up, and its peak RSS). \"Summary\" includes the file's SHA-256 (hashed "
            "in a thread beside the pass), \"hash known\" does not.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000,
                        help="packets per capture (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--workdir", type=Path, default=Path("/dev/shm/srp-summary-bench"),
                        help="where the captures go (tmpfs; default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir's files")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.packets < 1000:
        parser.error("--repeat must be at least 1 and --packets at least 1000")
    return in_private_workdir(args.workdir, args.keep, Bench(args).run)


if __name__ == "__main__":
    sys.exit(main())
