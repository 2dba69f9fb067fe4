#!/usr/bin/env python3
"""Benchmark `srp-pcap netmon` against the NetMon simulator: parallel vs one-by-one, memory.

    python bench/netmon_bench.py [--quick] [--sessions N] [--latency MS] [--repeat N]
                                 [--workdir DIR] [--keep]

Prints figures (the machine, every timed run, and a markdown table with issue 3's goals next
to the measured ones). It asserts nothing: it is a measuring tool, not a test.

What it does (work files on tmpfs, default /dev/shm/srp-netmon-bench; a private directory is
made inside it and removed at the end):

- Starts srp.simulators.netmon.NetMonSimulator in this process (HTTPS on loopback, its own
  self-signed certificate) with --sessions sessions (default 200), all of one domain and all
  captured, spread over the hour before a fixed alarm time, and --latency ms (default 50)
  added to every request. Every session's 7z is made before timing (.prepare()).
- Speed: runs the real CLI as a subprocess,
      srp-pcap netmon --address URL --api-key KEY --query DOMAIN --ca-bundle CERT
                      --alarm-date T --pcap-dir DIR --json --force ...
  with --concurrency 1 (one download after another, as the old plugin did) and with the
  default concurrency (8), alternately, best of --repeat wall times. Checks every run: exit 0,
  status "ok", all sessions downloaded, the merged output's packet count equals the
  catalogue's, and every output (both modes, every round) has the same SHA-256. The
  simulator's request log gives the requests each run made (search pages, downloads).
- Memory: peak RSS (ru_maxrss of a fresh child under GNU `/usr/bin/time -f %M`, the helper
  of merge_bench.py) of the CLI, for catalogues of the same session count whose sessions
  differ in size (payload_packets 8, 100, 300: ~15 KB, ~157 KB, ~465 KB of frames each, so
  ~1x, ~10x, ~30x the total). At the default concurrency (the goal's figure, larger of 2
  runs), at --concurrency 1, and `srp-pcap merge -F pcap` alone over the same captures (the
  simulator's files), to tell the phases apart. "Flat": peak RSS grows by at most 10 %.

--quick: 40 sessions and best of 2, a smoke run (the speed-up is smaller there: the CLI's
fixed start-up cost weighs more against fewer downloads). A full run takes ~6 minutes on 2
cores, most of it making the larger catalogues' captures with scapy.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# merge_bench.py's helpers (machine description, RSS meter, formatting), imported, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from merge_bench import (  # noqa: E402
    FLAT_TOLERANCE,
    host_lines,
    in_private_workdir,
    MB,
    RssMeter,
    find_srp,
    fmt_mb,
    fmt_s,
    fs_type,
    load,
    pcap_count,
    pcapng_records,
    say,
    sha256,
)

GOAL_SPEEDUP = 6.0           # issue 3: concurrent >= 6x faster than one after another
DOMAIN = "bench.example.com"
# Response segments per session: ~15 KB, ~157 KB (~10x), ~465 KB (~30x) of frames each.
PAYLOADS = (8, 100, 300)
DEFAULT_CONCURRENCY = 8      # the CLI's default (not passed: the default is what we measure)
API_KEY = "bench-netmon-key-0123456789"


def machine_lines(srp: list[str], workdir: Path) -> list[str]:
    lines = host_lines()
    v = subprocess.run([*srp, "--version"], capture_output=True, text=True)
    lines.append(f"srp-pcap: {v.stdout.strip() or v.stderr.strip()} ({' '.join(srp)}; "
                 f"its modules compiled to bytecode before timing)")
    versions = []
    for mod in ("requests", "urllib3", "py7zr", "scapy"):
        try:
            m = __import__(mod)
            versions.append(f"{mod} {getattr(m, '__version__', None) or getattr(m, 'VERSION', '?')}")
        except ImportError:
            versions.append(f"{mod} not installed")
    lines.append("; ".join(versions))
    lines.append("simulator: srp.simulators.netmon.NetMonSimulator in the benchmark's process "
                 "(threaded HTTPS on 127.0.0.1), sharing the machine with the CLI")
    lines.append(f"work dir: {workdir} (filesystem: {fs_type(workdir)})")
    return lines


def output_packets(path: Path) -> tuple[str, int]:
    """(format, packet count) of a merged output."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x0a\x0d\x0d\x0a":
        return "pcapng", sum(1 for _ in pcapng_records(path))
    return "pcap", pcap_count(path)


class Catalogue:
    """A running simulator with `count` captured sessions of one domain, ready to serve."""

    def __init__(self, count: int, payload_packets: int, latency: float, now: dt.datetime,
                 cert_dir: Path):
        from srp.simulators.netmon import NetMonSimulator, default_sessions

        specs = [dataclasses.replace(spec, captured=True)
                 for spec in default_sessions(count, now=now, domains=(DOMAIN,), seed=3,
                                              payload_packets=payload_packets)]
        self.netmon = NetMonSimulator(specs, api_key=API_KEY, latency=latency,
                                      cert_dir=cert_dir)
        self.count = count
        self.payload_packets = payload_packets
        self.packets = sum(s.summary.packets for s in self.netmon.sessions)
        self.wire_bytes = sum(s.summary.wire_bytes for s in self.netmon.sessions)

    def __enter__(self) -> Catalogue:
        netmon = self.netmon
        netmon.start()
        latency, netmon.latency = netmon.latency, 0.0
        t0 = time.perf_counter()
        netmon.prepare()
        self.prepare_s = time.perf_counter() - t0
        netmon.latency = latency
        bodies = [netmon.store.body(s) for s in netmon.sessions]
        self.download_bytes = sum(p.stat().st_size for p in bodies)
        return self

    def __exit__(self, *exc_info) -> None:
        self.netmon.stop()

    def describe(self) -> str:
        return (f"{self.count} sessions x payload_packets {self.payload_packets}: "
                f"{self.packets:,} packets, {self.wire_bytes / MB:.1f} MB of frames, "
                f"{self.download_bytes / MB:.1f} MB of 7z downloads "
                f"(prepared in {self.prepare_s:.1f} s)")

    def short(self) -> str:
        return (f"{self.count} x ~{self.wire_bytes / self.count / 1024:.0f} KB "
                f"({self.wire_bytes / MB:.1f} MB)")

    def captures(self) -> list[Path]:
        """The sessions' capture files as the simulator keeps them, in catalogue order."""
        return [self.netmon.capture_path(s.spec.id) for s in self.netmon.sessions]


class Bench:
    def __init__(self, args, root: Path):
        self.args = args
        self.root = root
        self.srp = find_srp()
        self.sessions = args.sessions
        self.latency = args.latency / 1000
        self.repeat = args.repeat
        # A fixed alarm time; the sessions lie in the hour before it.
        self.alarm = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.rows: list[list[str]] = []
        self.odd: list[str] = []
        self.hashes: set[str] = set()   # SHA-256 of every merged output of PAYLOADS[0]

    def command(self, cat: Catalogue, pcap_dir: Path, alarm_id: str,
                concurrency: int | None) -> list[str]:
        netmon = cat.netmon
        extra = [] if concurrency is None else ["--concurrency", str(concurrency)]
        return [*self.srp, "netmon", "--address", netmon.url, "--api-key", netmon.api_key,
                "--query", DOMAIN, "--ca-bundle", str(netmon.ca_bundle),
                "--alarm-date", self.alarm.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "--before", "90", "--after", "15", "--alarm-id", alarm_id,
                "--max-sessions", str(max(500, cat.count)),
                "--pcap-dir", str(pcap_dir), "--json", "--force", *extra]

    # one CLI run, timed ---------------------------------------------------------------------
    def run_cli(self, cat: Catalogue, label: str, concurrency: int | None) -> dict:
        pcap_dir = self.root / f"out-{label}"
        if pcap_dir.exists():
            shutil.rmtree(pcap_dir)
        netmon = cat.netmon
        before = len(netmon.requests)
        t0 = time.perf_counter()
        proc = subprocess.run(self.command(cat, pcap_dir, f"bench-{label}", concurrency),
                              capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        requests = netmon.requests[before:]
        run = {"wall": wall, "rc": proc.returncode, "error": None,
               "searches": sum(r.method == "POST" for r in requests),
               "downloads": sum(r.method == "GET" for r in requests),
               "non_200": sum(r.status != 200 for r in requests)}
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            run["error"] = f"exit {proc.returncode}, no JSON: {tail}"
            return run
        run["json"] = result
        problems = []
        if proc.returncode != 0 or result.get("status") != "ok":
            problems.append(f"exit {proc.returncode}, status {result.get('status')}: "
                            f"{result.get('reason')} {result.get('errors')}")
        sessions = result.get("sessions", {})
        if sessions.get("downloaded") != cat.count or sessions.get("found") != cat.count:
            problems.append(f"sessions {sessions} (expected {cat.count} found and downloaded)")
        pcap = result.get("pcap")
        if pcap and Path(pcap).exists():
            run["format"], run["packets"] = output_packets(Path(pcap))
            run["sha256"] = sha256(Path(pcap))
            if run["sha256"] != result.get("sha256"):
                problems.append("the output's SHA-256 differs from the one the JSON reports")
            if run["packets"] != cat.packets or result.get("packets") != cat.packets:
                problems.append(f"{run['packets']:,} packets in the output, JSON says "
                                f"{result.get('packets')}, expected {cat.packets:,}")
        else:
            problems.append(f"no merged output ({pcap!r})")
        if result.get("warnings"):
            self.note(f"{label}: warnings {result['warnings']}")
        if problems:
            run["error"] = "; ".join(problems)
        shutil.rmtree(pcap_dir, ignore_errors=True)
        return run

    def note(self, text: str) -> None:
        if text not in self.odd:
            self.odd.append(text)

    # speed --------------------------------------------------------------------------------
    def speed(self, cat: Catalogue) -> None:
        say(f"\n## Speed: {cat.count} sessions, {self.latency * 1000:.0f} ms added "
            f"per request")
        key8 = f"c{DEFAULT_CONCURRENCY}"
        modes = [("c1", 1, "--concurrency 1 (one after another, the old plugin's way)"),
                 (key8, None, f"default --concurrency ({DEFAULT_CONCURRENCY})")]
        runs: dict[str, list[dict]] = {key: [] for key, _, _ in modes}
        t_start = time.perf_counter()
        for round_ in range(self.repeat):
            for key, concurrency, _ in modes:
                run = self.run_cli(cat, key, concurrency)
                runs[key].append(run)
                status = "ok" if not run["error"] else f"PROBLEM: {run['error']}"
                refused = f", {run['non_200']} not 200" if run["non_200"] else ""
                say(f"  round {round_ + 1} {key:3s} wall {run['wall']:7.3f} s  "
                    f"requests: {run['searches']} search + {run['downloads']} downloads"
                    f"{refused}  {status}  (load {load()})")
                where = f"{key} round {round_ + 1}"
                if run["error"]:
                    self.note(f"{where}: {run['error']}")
                if run["non_200"]:
                    self.note(f"{where}: {run['non_200']} requests answered other than 200")
                if run["downloads"] != cat.count:
                    self.note(f"{where}: {run['downloads']} downloads for {cat.count} sessions")
        say(f"  (timing took {time.perf_counter() - t_start:.1f} s)")

        best = {}
        for key, _, title in modes:
            good = [r["wall"] for r in runs[key] if not r["error"]]
            best[key] = min(good) if good else None
            walls = " ".join(f"{r['wall']:.2f}" for r in runs[key])
            say(f"  {title}: best {fmt_s(best[key])}, all {walls}")
        first = runs["c1"][0]
        requests_c1 = first["searches"] + first["downloads"]
        floor = requests_c1 * self.latency
        say(f"  one-after-another floor from the added latency alone: {requests_c1} requests x "
            f"{self.latency * 1000:.0f} ms = {floor:.2f} s")
        if best["c1"]:
            per_request = best["c1"] / requests_c1
            say(f"  --concurrency 1 spends {per_request * 1000:.0f} ms per request (start-up "
                f"and merge included)")

        # identity of the outputs
        all_runs = [r for rs in runs.values() for r in rs]
        hashes = {r.get("sha256") for r in all_runs if r.get("sha256")}
        complete = all(r.get("packets") == cat.packets for r in all_runs)
        formats = sorted({r.get("format") for r in all_runs if r.get("format")})
        identical = len(hashes) == 1 and all(r.get("sha256") for r in all_runs)
        say(f"  outputs: {len(all_runs)} runs, {len(hashes)} distinct SHA-256 "
            f"({', '.join(sorted(h[:16] + '...' for h in hashes))}), format "
            f"{'/'.join(formats)}, packets {'all' if complete else 'NOT all'} {cat.packets:,}")
        self.hashes |= hashes

        b1, b8 = best["c1"], best[key8]
        speedup = b1 / b8 if b1 and b8 else None
        what = f"{cat.count} sessions, {self.latency * 1000:.0f} ms/request"
        self.rows.append([f"{what}: --concurrency 1 (one after another)",
                          f"{fmt_s(b1)} (latency floor {floor:.2f} s)", "(baseline)", ""])
        self.rows.append([f"{what}: default --concurrency {DEFAULT_CONCURRENCY}",
                          fmt_s(b8), "", ""])
        self.rows.append([f"{what}: speed-up (best of {self.repeat} each)",
                          "n/a" if speedup is None else f"{speedup:.2f}x",
                          f">= {GOAL_SPEEDUP:g}x",
                          "n/a" if speedup is None else
                          ("yes" if speedup >= GOAL_SPEEDUP else "**no**")])
        digest = next(iter(hashes))[:16] + "..." if len(hashes) == 1 else f"{len(hashes)} hashes"
        self.rows.append([f"{what}: merged outputs of all {len(all_runs)} runs",
                          f"SHA-256 {digest}; {'/'.join(formats)}, "
                          f"{'all ' if complete else 'NOT all '}{cat.packets:,} packets",
                          "identical, every captured packet",
                          "yes" if identical and complete else "**no**"])

    # memory -------------------------------------------------------------------------------
    def memory_cli(self, meter: RssMeter, cat: Catalogue, concurrency: int | None,
                   times: int) -> int | None:
        """Peak RSS of the CLI (the largest of `times` runs), its output checked."""
        label = f"c{concurrency or DEFAULT_CONCURRENCY}"
        pcap_dir = self.root / f"out-mem-{label}"
        results = []
        for _ in range(times):
            if pcap_dir.exists():
                shutil.rmtree(pcap_dir)
            r = meter.measure(self.command(cat, pcap_dir, f"bench-mem-{label}", concurrency))
            outputs = [p for p in pcap_dir.glob("*") if p.suffix in (".pcap", ".pcapng")]
            problem = None
            if r["rc"] != 0:
                problem = f"exit {r['rc']}: {r['stderr'][-200:]}"
            elif len(outputs) != 1:
                problem = f"{len(outputs)} outputs in {pcap_dir}"
            else:
                _, n = output_packets(outputs[0])
                if n != cat.packets:
                    problem = f"{n:,} packets, expected {cat.packets:,}"
                if cat.payload_packets == PAYLOADS[0]:
                    self.hashes.add(sha256(outputs[0]))
            results.append(r["maxrss_kb"] if problem is None else None)
            say(f"    netmon {label}: {fmt_mb(r['maxrss_kb']):>7s} (wall {r['wall'] or 0:.2f} s)"
                f"{'' if problem is None else f'  PROBLEM: {problem}'}")
            if problem:
                self.note(f"memory, {cat.short()}, {label}: {problem}")
        shutil.rmtree(pcap_dir, ignore_errors=True)
        good = [kb for kb in results if kb is not None]
        return max(good) if good else None

    def memory_merge(self, meter: RssMeter, cat: Catalogue) -> int | None:
        """Peak RSS of `srp-pcap merge -F pcap` alone over the same captures."""
        output = self.root / "out-mem-merge.pcap"
        r = meter.measure([*self.srp, "merge", "-F", "pcap", "-w", str(output),
                           *map(str, cat.captures())])
        ok = r["rc"] == 0 and output.exists()
        say(f"    merge alone: {fmt_mb(r['maxrss_kb']):>7s} (wall {r['wall'] or 0:.2f} s)"
            f"{'' if ok else '  FAILED: ' + r['stderr'][-200:]}")
        if output.exists():
            output.unlink()
        return r["maxrss_kb"] if ok else None

    def memory(self, meter: RssMeter, cert_dir: Path, first: Catalogue | None) -> None:
        results = []   # (catalogue description, total frame bytes, c8, c1, merge)
        for payload in PAYLOADS:
            if first is not None and payload == first.payload_packets:
                cat, own = first, False
            else:
                cat, own = Catalogue(self.sessions, payload, self.latency, self.alarm,
                                     cert_dir), True
                cat.__enter__()
            try:
                say(f"  {cat.describe()}")
                c8 = self.memory_cli(meter, cat, None, 2)
                c1 = self.memory_cli(meter, cat, 1, 1)
                alone = self.memory_merge(meter, cat)
                results.append((cat.short(), cat.wire_bytes, c8, c1, alone))
            finally:
                if own:
                    cat.__exit__(None, None, None)

        base_desc, base_bytes, base8, base1, base_m = results[0]
        for index, (desc, total, c8, c1, alone) in enumerate(results):
            def growth(kb, ref):
                return None if not kb or not ref else kb / ref - 1
            g8 = growth(c8, base8)
            extra = "" if index == 0 or g8 is None else (
                f" ({g8 * 100:+.0f}% for {total / base_bytes:.0f}x the bytes)")
            goal = "" if index == 0 else f"flat (<= +{FLAT_TOLERANCE:.0%})"
            met = "" if index == 0 else ("n/a" if g8 is None else
                                          ("yes" if g8 <= FLAT_TOLERANCE else "**no**"))
            self.rows.append([f"Peak RSS, {desc} of sessions, default --concurrency "
                              f"{DEFAULT_CONCURRENCY}", fmt_mb(c8) + extra, goal, met])
            self.rows.append([f"Peak RSS, {desc}: --concurrency 1 / merge alone",
                              f"{fmt_mb(c1)} / {fmt_mb(alone)}", "(to tell phases apart)", ""])

    # everything ---------------------------------------------------------------------------
    def run(self) -> None:
        say("# srp-pcap netmon benchmark" + (" (--quick)" if self.args.quick else ""))
        for line in machine_lines(self.srp, self.root):
            say(f"- {line}")
        say(f"- sessions: {self.sessions}; latency {self.latency * 1000:.0f} ms per request; "
            f"best of {self.repeat}; load average at start: {load()}")
        if fs_type(self.root) != "tmpfs":
            say("- WARNING: the work dir is not on tmpfs; disk timing is noisy")
        t_all = time.perf_counter()
        # The simulator keeps its captures in a temporary directory: put it on our tmpfs.
        tempfile.tempdir = str(self.root)
        cert_dir = self.root / "cert"

        with Catalogue(self.sessions, PAYLOADS[0], self.latency, self.alarm,
                       cert_dir) as small:
            say(f"\ncatalogue: {small.describe()}")
            self.speed(small)
            say("\n## Peak RSS of the CLI (ru_maxrss of a fresh child)")
            meter = RssMeter(self.root)
            say(f"  measured with {meter.method}; floor (/bin/true): {fmt_mb(meter.floor_kb)}")
            base = meter.measure([*self.srp, "--version"])
            say(f"  srp-pcap --version (interpreter + CLI baseline): {fmt_mb(base['maxrss_kb'])}")
            self.memory(meter, cert_dir, small)
        if len(self.hashes) > 1:
            self.note(f"the merged outputs of one catalogue have {len(self.hashes)} different "
                      f"SHA-256 across scenarios")

        say(f"\n(total {time.perf_counter() - t_all:.0f} s; load average at end: {load()})")
        if self.odd:
            say("\n## Odd things seen")
            for text in self.odd:
                say(f"- {text}")
        self.table()

    def table(self) -> None:
        say("\n## README table\n")
        head = ["Scenario", "Figure", "Goal (issue 3)", "Met"]
        say("| " + " | ".join(head) + " |")
        say("|" + "|".join("---" for _ in head) + "|")
        for row in self.rows:
            say("| " + " | ".join(row) + " |")
        say("")
        say(f"The real CLI against the NetMon simulator over loopback HTTPS, every request "
            f"delayed {self.latency * 1000:.0f} ms by the server; wall time of the whole "
            f"process (start-up, search, downloads, unpacking, merge, manifest), best of "
            f"{self.repeat}, the two concurrencies run alternately. The latency floor is "
            f"requests x latency. "
            f"Peak RSS is ru_maxrss of one fresh CLI child (at the default concurrency the "
            f"larger of 2 runs); \"flat\": at more bytes per session (same session count) it "
            f"grows by at most {FLAT_TOLERANCE:.0%} over the smallest catalogue.")
        if self.args.quick:
            say("\n(--quick: fewer sessions; the figures are only a smoke test.)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="40 sessions, best of 2 (smoke run)")
    parser.add_argument("--sessions", type=int, help="sessions in the catalogue (default 200)")
    parser.add_argument("--latency", type=float, default=50.0, metavar="MS",
                        help="ms the simulator adds to every request (default %(default)s)")
    parser.add_argument("--repeat", type=int, help="best of N (default 3, --quick 2)")
    parser.add_argument("--workdir", type=Path, default=Path("/dev/shm/srp-netmon-bench"),
                        help="where files go (tmpfs; default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir's files")
    args = parser.parse_args(argv)
    if args.sessions is None:
        args.sessions = 40 if args.quick else 200
    if args.repeat is None:
        args.repeat = 2 if args.quick else 3
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.latency < 0:
        parser.error("--latency must be 0 or more")

    return in_private_workdir(args.workdir, args.keep, lambda root: Bench(args, root).run())


if __name__ == "__main__":
    sys.exit(main())
