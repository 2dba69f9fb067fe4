#!/usr/bin/env python3
"""Benchmark `srp-pcap merge` against Wireshark's mergecap and pure-Python mergers.

    python bench/merge_bench.py [--quick] [--workdir DIR] [--repeat N] [--keep]

Prints figures (the machine, every timed run, and a markdown table for the README with the
goals of issue 2 next to the measured ratios). It asserts nothing about speed: it is a
measuring tool, not a test.

What it does, all on tmpfs (default /dev/shm/srp-bench; a private directory is made inside
it and removed at the end):

- Scenario A: 4 files x 120,000 packets, classic pcap (microsecond), timestamps interleaved
  across the files.
- Scenario B: 600 files x ~300 packets ("NetMon sessions"): each file is one flow with its
  own start time spread over an hour and a duration of seconds to minutes, so the files
  overlap partly.
  For each: wall time of `mergecap -F pcap`, `srp-pcap merge -F pcap`, and of both with
  their default pcapng output, run alternately in one run, best of --repeat. The pcap
  outputs are compared byte for byte, the pcapng outputs record by record (link type,
  timestamp in ns, lengths, bytes: the section headers name different writers).
- Peak RSS (ru_maxrss of a fresh child: each command runs under its own `/usr/bin/time -f %M`,
  or a minimal Python wrapper when GNU time is missing) of srp-pcap and mergecap merging
  ~150 MB and ~300 MB of input (4 files each), and scenario B's inputs. A child's ru_maxrss
  also counts the process it was spawned from, so the measuring process is kept tiny and its
  floor (what /bin/true measures) is printed.
- Pure-Python alternatives on scenario A: a heapq merge with scapy's RawPcapReader +
  RawPcapWriter (scapy.utils only, not scapy.all) and with dpkt's pcap.Reader + pcap.Writer,
  each run as its own process like the CLI.

--quick shrinks every input ~10x for a smoke run. Frames are random bytes of realistic
Ethernet sizes (60..1514), written with caplen == origlen; the content does not matter to
a merger.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import itertools
import math
import mmap
import os
import platform
import random
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

NS_PER_S = 10**9
US_PER_S = 10**6
BASE_SEC = 1_700_000_000
PCAP_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # us, Ethernet
PCAP_REC = struct.Struct("<IIII")
MB = 1024 * 1024

# Issue 2's goals.
GOAL_A = 2.0      # scenario A: ours / mergecap <= 2.0
GOAL_B = 1.0      # scenario B: ours / mergecap < 1.0
GOAL_RSS_MB = 80  # peak RSS merging 150 MB of input
FLAT_TOLERANCE = 0.10  # "flat": RSS at 2x input grows by at most 10 %


# --------------------------------------------------------------------------------------
# Fast synthetic inputs
# --------------------------------------------------------------------------------------

class FastGen:
    """Classic pcap files at ~1 us/record: one random buffer, sliced."""

    BUF = 1 << 20

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.payload = memoryview(self.rng.randbytes(self.BUF + 1514))
        # A frame size table with a realistic mix: ~45 % small (ACKs and the like),
        # ~35 % full-size 1514, ~20 % anything in between.
        rng = self.rng
        small = [60, 60, 60, 66, 66, 66, 74, 78, 90, 100]
        table = [rng.choice(small) for _ in range(450)]
        table += [1514] * 350
        table += [rng.randint(101, 1513) for _ in range(200)]
        self.size_table = table
        self.mean_size = sum(table) / len(table)

    def sizes(self, n: int) -> list[int]:
        return self.rng.choices(self.size_table, k=n)

    def write(self, path: Path, timestamps_us: list[int]) -> int:
        """Write one record per timestamp (absolute us); returns the file's size."""
        n = len(timestamps_us)
        sizes = self.sizes(n)
        getrandbits = self.rng.getrandbits
        view = self.payload
        pack = PCAP_REC.pack
        with open(path, "wb") as f:
            f.write(PCAP_GLOBAL)
            parts: list = []
            for ts, size in zip(timestamps_us, sizes):
                off = getrandbits(20)
                sec, usec = divmod(ts, US_PER_S)
                parts.append(pack(sec, usec, size, size))
                parts.append(view[off:off + size])
                if len(parts) >= 32768:
                    f.write(b"".join(parts))
                    parts.clear()
            f.write(b"".join(parts))
        return path.stat().st_size

    def interleaved(self, n: int, mean_gap_us: float) -> list[int]:
        """Monotonic timestamps, random gaps (>= 1 us), starting near BASE_SEC."""
        rng = self.rng
        start = BASE_SEC * US_PER_S + rng.randrange(1000)
        lam = 1.0 / mean_gap_us
        expo = rng.expovariate
        gaps = [1 + int(expo(lam)) for _ in range(n)]
        gaps[0] = 0
        return list(itertools.accumulate(gaps, initial=start))[1:]

    def session(self, n: int, hour_us: int) -> list[int]:
        """One flow: start anywhere in the hour, last 2 s .. 10 min (log-uniform)."""
        rng = self.rng
        start = BASE_SEC * US_PER_S + rng.randrange(hour_us)
        duration = int(math.exp(rng.uniform(math.log(2), math.log(600))) * US_PER_S)
        return sorted(start + rng.randrange(duration) for _ in range(n))


def make_interleaved(gen: FastGen, directory: Path, prefix: str, files: int,
                     packets: int) -> list[Path]:
    paths = []
    for i in range(files):
        path = directory / f"{prefix}{i}.pcap"
        # ~2,000 packets/s per file: every file spans the same minute, so they interleave.
        gen.write(path, gen.interleaved(packets, 500.0))
        paths.append(path)
    return paths


def make_sessions(gen: FastGen, directory: Path, files: int, mean_packets: int) -> list[Path]:
    paths = []
    hour = 3600 * US_PER_S
    low, high = mean_packets * 2 // 3, mean_packets * 4 // 3
    for i in range(files):
        path = directory / f"session-{i:04d}.pcap"
        gen.write(path, gen.session(gen.rng.randint(low, high), hour))
        paths.append(path)
    return paths


def make_sized(gen: FastGen, directory: Path, prefix: str, files: int,
               total_bytes: int) -> list[Path]:
    per_file = total_bytes // files
    packets = int(per_file / (PCAP_REC.size + gen.mean_size))
    return make_interleaved(gen, directory, prefix, files, packets)


# --------------------------------------------------------------------------------------
# Reading outputs back (for the identity checks)
# --------------------------------------------------------------------------------------

def pcap_count(path: Path) -> int:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        magic = m[:4]
        endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        caplen_at = struct.Struct(endian + "I").unpack_from
        pos, end, n = 24, len(m), 0
        while pos + 16 <= end:
            pos += 16 + caplen_at(m, pos + 8)[0]
            n += 1
        return n


def first_difference(a: Path, b: Path) -> int | None:
    """Byte offset of the first difference, or None if the files are identical."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        offset = 0
        while True:
            ca, cb = fa.read(MB), fb.read(MB)
            if ca != cb:
                n = min(len(ca), len(cb))
                for i in range(n):
                    if ca[i] != cb[i]:
                        return offset + i
                return offset + n
            if not ca:
                return None
            offset += len(ca)


def pcapng_records(path: Path):
    """(linktype, ts_ns, caplen, origlen, data) for every packet block of a pcapng file."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos, end = 0, len(m)
        endian = "<"
        ifaces: list[tuple[int, int, int]] = []  # (linktype, units per second, is power of 2)
        while pos + 12 <= end:
            btype = struct.unpack_from(endian + "I", m, pos)[0]
            if btype == 0x0A0D0D0A:
                endian = "<" if m[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            blen = struct.unpack_from(endian + "I", m, pos + 4)[0]
            if blen < 12 or pos + blen > end:
                raise ValueError(f"{path}: bad block at {pos}")
            body = pos + 8
            if btype == 1:  # IDB
                linktype = struct.unpack_from(endian + "H", m, body)[0]
                per_second = US_PER_S
                opt, opt_end = body + 8, pos + blen - 4
                while opt + 4 <= opt_end:
                    code, length = struct.unpack_from(endian + "HH", m, opt)
                    if code == 0:
                        break
                    if code == 9 and length >= 1:
                        v = m[opt + 4]
                        per_second = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
                    opt += 4 + (length + 3) // 4 * 4
                ifaces.append((linktype, per_second))
            elif btype == 6:  # EPB
                if_id, hi, lo, caplen, origlen = struct.unpack_from(endian + "IIIII", m, body)
                linktype, per_second = ifaces[if_id]
                ts_ns = ((hi << 32) | lo) * NS_PER_S // per_second
                yield linktype, ts_ns, caplen, origlen, m[body + 20:body + 20 + caplen]
            elif btype == 3:  # SPB
                origlen = struct.unpack_from(endian + "I", m, body)[0]
                caplen = min(origlen, blen - 16)
                yield ifaces[0][0], None, caplen, origlen, m[body + 4:body + 4 + caplen]
            pos += blen


def compare_pcapng(a: Path, b: Path) -> str:
    count = 0
    for ra, rb in itertools.zip_longest(pcapng_records(a), pcapng_records(b)):
        if ra != rb:
            if ra is None or rb is None:
                return f"DIFFERENT: record counts differ after {count} records"
            return (f"DIFFERENT at record {count}: mergecap {ra[:4]} vs srp {rb[:4]}"
                    + ("" if ra[:4] != rb[:4] else " (packet bytes differ)"))
        count += 1
    return f"record-identical ({count:,} records)"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MB):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# Pure-Python alternatives (run as `merge_bench.py _scapy OUT IN...` in their own process)
# --------------------------------------------------------------------------------------

def scapy_merge(output: str, inputs: list[str]) -> None:
    from scapy.utils import RawPcapReader, RawPcapWriter

    readers = [RawPcapReader(path) for path in inputs]
    linktypes = {r.linktype for r in readers}
    if len(linktypes) != 1:
        raise SystemExit(f"different link types: {linktypes}")
    writer = RawPcapWriter(output, linktype=linktypes.pop(), snaplen=262144)
    writer.write_header(None)
    write = writer.write_packet
    heap = []
    for index, reader in enumerate(readers):
        it = iter(reader)
        for data, meta in it:
            heap.append(((meta.sec, meta.usec, -index), data, meta, it))
            break
    heapq.heapify(heap)
    while heap:
        key, data, meta, it = heap[0]
        write(data, sec=meta.sec, usec=meta.usec, caplen=meta.caplen, wirelen=meta.wirelen)
        for data, meta in it:
            heapq.heapreplace(heap, ((meta.sec, meta.usec, key[2]), data, meta, it))
            break
        else:
            heapq.heappop(heap)
    writer.close()
    for reader in readers:
        reader.close()


def dpkt_merge(output: str, inputs: list[str]) -> None:
    import dpkt.pcap

    files = [open(path, "rb") for path in inputs]
    readers = [dpkt.pcap.Reader(f) for f in files]
    linktypes = {r.datalink() for r in readers}
    if len(linktypes) != 1:
        raise SystemExit(f"different link types: {linktypes}")
    out = open(output, "wb")
    writer = dpkt.pcap.Writer(out, snaplen=262144, linktype=linktypes.pop())
    write = writer.writepkt_time  # dpkt keeps no origlen: it writes caplen for both
    heap = []
    for index, reader in enumerate(readers):
        it = iter(reader)
        for ts, buf in it:  # ts is a float (seconds)
            heap.append(((ts, -index), buf, it))
            break
    heapq.heapify(heap)
    while heap:
        key, buf, it = heap[0]
        write(buf, key[0])
        for ts, buf in it:
            heapq.heapreplace(heap, ((ts, key[1]), buf, it))
            break
        else:
            heapq.heappop(heap)
    writer.close()
    for f in files:
        f.close()


# The fallback RSS wrapper, when GNU time is missing: as small as Python gets (-S, os only),
# because a child's ru_maxrss also counts the memory of the process it was spawned from
# (Linux records the pre-exec address space's high-water mark), so it is a floor.
RSS_WRAPPER = r"""
import os, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
acts = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_DUP2, out, 2)]
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ, file_actions=acts)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, wall)
"""


# --------------------------------------------------------------------------------------
# Running and timing
# --------------------------------------------------------------------------------------

SELF = Path(__file__).resolve()


def find_srp() -> list[str]:
    """The srp-pcap command to measure. Its package's modules are compiled first, as pip
    does when it installs a package: a checkout used under PYTHONDONTWRITEBYTECODE would
    otherwise compile them from source at every start, which no installed copy does."""
    import compileall

    import srp

    compileall.compile_dir(Path(srp.__file__).parent, quiet=1)
    beside = Path(sys.executable).parent / "srp-pcap"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("srp-pcap")
    return [found] if found else [sys.executable, "-m", "srp"]


class Tools:
    def __init__(self):
        self.srp = find_srp()
        self.mergecap = shutil.which("mergecap")

    def command(self, tool: str, fmt: str | None, output: Path, inputs: list[Path]) -> list[str]:
        ins = [str(p) for p in inputs]
        fflag = ["-F", fmt] if fmt else []
        if tool == "mergecap":
            return [self.mergecap, *fflag, "-w", str(output), *ins]
        if tool == "srp":
            return [*self.srp, "merge", *fflag, "-w", str(output), *ins]
        if tool in ("scapy", "dpkt"):
            return [sys.executable, str(SELF), f"_{tool}", str(output), *ins]
        raise ValueError(tool)


class Run:
    def __init__(self, label: str):
        self.label = label
        self.times: list[float] = []
        self.cpu: list[float] = []   # user + system CPU seconds of the child
        self.error: str | None = None

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times and not self.error else None

    def describe(self) -> str:
        if self.error:
            return f"FAILED: {self.error}"
        return (f"best {self.best:7.3f} s   median {statistics.median(self.times):7.3f} s   "
                f"cpu best {min(self.cpu):6.3f} s   "
                f"runs {' '.join(f'{t:.3f}' for t in self.times)}")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str], output: Path) -> tuple[float, float, str | None]:
    """Wall time, CPU time (user + system, from the reaped child's rusage), error."""
    if output.exists():
        output.unlink()
    c0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        return wall, cpu, f"exit {proc.returncode}: {lines[-1] if lines else ''}"
    if not output.exists():
        return wall, cpu, "no output file"
    return wall, cpu, None


def time_side_by_side(variants: list[tuple[str, list[str], Path]], repeat: int) -> dict:
    """Run every variant once per round, alternately, `repeat` rounds."""
    runs = {label: Run(label) for label, _, _ in variants}
    for _ in range(repeat):
        for label, command, output in variants:
            run = runs[label]
            if run.error:
                continue
            wall, cpu, error = run_once(command, output)
            if error:
                run.error = error
            else:
                run.times.append(wall)
                run.cpu.append(cpu)
    return runs


def gnu_time() -> str | None:
    """/usr/bin/time if it is GNU time (it has -f %M, ru_maxrss in KiB)."""
    exe = shutil.which("time", path="/usr/bin:/bin")
    if not exe:
        return None
    p = subprocess.run([exe, "-f", "%M", "true"], capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    return exe if p.returncode == 0 and lines and lines[-1].isdigit() else None


class RssMeter:
    """Peak RSS of one command, in a fresh child: GNU time, or a minimal Python wrapper.

    Each command gets its own measuring process, so nothing earlier pollutes ru_maxrss. The
    floor (what /bin/true measures) is the measuring process's own footprint."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.time = gnu_time()
        self.method = (f"GNU time -f %M ({self.time})" if self.time
                       else "python -S wrapper with os.posix_spawn + os.wait4")
        self.floor_kb = self.measure([shutil.which("true") or "/bin/true"])["maxrss_kb"]

    def measure(self, command: list[str]) -> dict:
        report = self.scratch / "rss-report.txt"
        errors = self.scratch / "rss-stderr.txt"
        if self.time:
            t0 = time.perf_counter()
            with open(errors, "wb") as err:
                p = subprocess.run([self.time, "-f", "%x %M", "-o", str(report), *command],
                                   stdout=subprocess.DEVNULL, stderr=err)
            wall = time.perf_counter() - t0
            try:
                rc, kb = report.read_text().strip().splitlines()[-1].split()
                rc, kb = int(rc), int(kb)
            except (OSError, ValueError, IndexError):
                rc, kb = p.returncode or -1, None
        else:
            p = subprocess.run([sys.executable, "-S", "-c", RSS_WRAPPER, str(errors), *command],
                               capture_output=True, text=True)
            try:
                rc, kb, wall = p.stdout.split()
                rc, kb, wall = int(rc), int(kb), float(wall)
            except ValueError:
                rc, kb, wall = -1, None, None
        try:
            stderr = errors.read_text(errors="replace")[-300:]
        except OSError:
            stderr = ""
        for f in (report, errors):
            if f.exists():
                f.unlink()
        return {"rc": rc, "maxrss_kb": kb, "wall": wall, "stderr": stderr}


# --------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def python_build() -> str:
    config = sysconfig.get_config_var("CONFIG_ARGS") or ""
    flags = " ".join(str(sysconfig.get_config_var(k) or "")
                     for k in ("PY_CFLAGS", "PY_CFLAGS_NODIST", "PY_LDFLAGS_NODIST", "OPT"))
    if "--enable-optimizations" in config or "-fprofile-use" in flags:
        return "PGO build: yes (--enable-optimizations / -fprofile-use in sysconfig)"
    exe = os.path.realpath(sys.executable)
    package = None
    if shutil.which("dpkg"):
        p = subprocess.run(["dpkg", "-S", exe], capture_output=True, text=True)
        if p.returncode == 0:
            package = p.stdout.split(":", 1)[0]
    if package:
        return (f"PGO build: not recorded in sysconfig; {exe} is Debian's {package}, which "
                "Debian builds with PGO+LTO on x86-64 (its changelog: flags are kept out of "
                "_sysconfigdata)")
    return "PGO build: no sign of it in sysconfig (--enable-optimizations absent)"


def host_lines() -> list[str]:
    """The machine and the Python running the benchmark, for every benchmark's header."""
    lines = [f"CPU: {cpu_model()}; {os.cpu_count()} logical cores "
             f"({len(os.sched_getaffinity(0))} usable)"]
    try:
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        lines.append(f"RAM: {int(mem) // 1024:,} MB; kernel {platform.release()}")
    except (OSError, IndexError, ValueError):
        pass
    lines.append(f"Python {platform.python_version()} ({platform.python_implementation()}, "
                 f"{sys.executable}); {python_build()}")
    return lines


def machine_lines(tools: Tools, workdir: Path) -> list[str]:
    lines = host_lines()
    if tools.mergecap:
        v = subprocess.run([tools.mergecap, "-v"], capture_output=True, text=True)
        lines.append(f"mergecap: {(v.stdout or v.stderr).splitlines()[0].strip()} "
                     f"({tools.mergecap})")
    else:
        lines.append("mergecap: NOT FOUND (mergecap rows skipped)")
    v = subprocess.run([*tools.srp, "--version"], capture_output=True, text=True)
    lines.append(f"srp-pcap: {v.stdout.strip() or v.stderr.strip()} ({' '.join(tools.srp)})")
    for mod in ("scapy", "dpkt"):
        try:
            m = __import__(mod)
            lines.append(f"{mod}: {getattr(m, 'VERSION', None) or getattr(m, '__version__', '?')}")
        except ImportError:
            lines.append(f"{mod}: not installed (its row is skipped)")
    lines.append(f"work dir: {workdir} (filesystem: {fs_type(workdir)})")
    return lines


def fs_type(path: Path) -> str:
    best, kind = "", "unknown"
    try:
        real = os.path.realpath(path)
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mnt = parts[1]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------

def fmt_s(t: float | None) -> str:
    return "n/a" if t is None else f"{t:.2f} s"


def fmt_mb(kb: int | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:.0f} MB"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def total_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def say(*args) -> None:
    print(*args, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tools = Tools()
        self.repeat = args.repeat
        self.quick = args.quick
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self.gen = FastGen(seed=20240601)

    def scale(self, n: int) -> int:
        return max(1, n // 10) if self.quick else n

    # one scenario: mergecap vs srp, pcap and pcapng -----------------------------------
    def scenario(self, key: str, title: str, inputs: list[Path], goal: float,
                 goal_text: str, strict: bool) -> dict:
        work = inputs[0].parent
        npk = sum(pcap_count(p) for p in inputs)
        say(f"\n## Scenario {key}: {title}")
        say(f"inputs: {len(inputs)} files, {npk:,} packets, {total_size(inputs) / MB:.1f} MB")
        have_mc = self.tools.mergecap is not None
        variants = []
        for fmt, ext in (("pcap", "pcap"), (None, "pcapng")):
            tools = (["mergecap"] if have_mc else []) + ["srp"]
            for tool in tools:
                out = work / f"out-{key}-{tool}.{ext}"
                variants.append((f"{tool} {fmt or 'pcapng'}",
                                 self.tools.command(tool, fmt, out, inputs), out))
        t_start = time.perf_counter()
        runs = time_side_by_side(variants, self.repeat)
        for label, command, out in variants:
            say(f"  {label:16s} {runs[label].describe()}")
        say(f"  (timing took {time.perf_counter() - t_start:.1f} s, load {load()})")
        if have_mc:
            parts = []
            for fmt in ("pcap", "pcapng"):
                mc, ours = runs[f"mergecap {fmt}"], runs[f"srp {fmt}"]
                if mc.cpu and ours.cpu and not (mc.error or ours.error):
                    parts.append(f"{fmt} {min(ours.cpu) / min(mc.cpu):.2f}x")
            say(f"  CPU-time ratio srp/mergecap (best of each; less sensitive to other load): "
                f"{', '.join(parts) or 'n/a'}")

        # identity checks
        outs = {label: out for label, _, out in variants}
        result = {"packets": npk, "runs": runs}
        ours_pcap = outs["srp pcap"]
        if not runs["srp pcap"].error:
            n = pcap_count(ours_pcap)
            say(f"  srp pcap output: {n:,} records "
                f"({'all' if n == npk else 'NOT all'} of the {npk:,} input records)")
        checks = {}
        if have_mc:
            if not (runs["mergecap pcap"].error or runs["srp pcap"].error):
                diff = first_difference(outs["mergecap pcap"], ours_pcap)
                checks["pcap"] = ("byte-identical" if diff is None
                                  else f"DIFFERENT (first difference at byte {diff:,})")
            else:
                checks["pcap"] = "not compared (a run failed)"
            if not (runs["mergecap pcapng"].error or runs["srp pcapng"].error):
                try:
                    checks["pcapng"] = compare_pcapng(outs["mergecap pcapng"], outs["srp pcapng"])
                except (ValueError, IndexError, struct.error) as exc:
                    checks["pcapng"] = f"not compared ({exc})"
            else:
                checks["pcapng"] = "not compared (a run failed)"
            say(f"  pcap outputs, srp vs mergecap: {checks['pcap']}")
            say(f"  pcapng outputs, srp vs mergecap: {checks['pcapng']}")
        result["checks"] = checks
        # keep one reference pcap for the alternatives, drop the rest
        ref = outs["mergecap pcap"] if have_mc and not runs["mergecap pcap"].error else ours_pcap
        result["reference"] = None
        if ref.exists():
            kept = work / f"ref-{key}.pcap"
            ref.replace(kept)
            result["reference"] = kept
        for out in outs.values():
            if out.exists():
                out.unlink()

        for fmt in ("pcap", "pcapng"):
            mc = runs.get(f"mergecap {fmt}")
            ours = runs[f"srp {fmt}"]
            r = ratio(ours.best, mc.best if mc else None)
            met = "n/a" if r is None else (
                ("yes" if (r < goal if strict else r <= goal) else "**no**"))
            check = checks.get(fmt, "n/a")
            check = check.split(" (")[0] if check.startswith(("byte", "record")) else check
            self.rows.append([
                f"{key}: {title}, {'-F pcap' if fmt == 'pcap' else 'pcapng (default)'}",
                "mergecap" if mc else "(mergecap not installed)",
                fmt_s(mc.best if mc else None), fmt_s(ours.best), fmt_ratio(r),
                goal_text, met, check])
        return result

    # pure-Python alternatives -----------------------------------------------------------
    def alternatives(self, inputs: list[Path], ours_best: float | None,
                     reference: Path | None, label: str, title: str) -> None:
        work = inputs[0].parent
        say(f"\n## Pure-Python alternatives on scenario {label} "
            f"({len(inputs)} files, {total_size(inputs) / MB:.1f} MB), heapq merge")
        ref_hash = sha256(reference) if reference else None
        variants = []
        for tool in ("scapy", "dpkt"):
            try:
                __import__(tool)
            except ImportError:
                say(f"  {tool}: not installed, skipped")
                continue
            out = work / f"out-alt-{tool}.pcap"
            variants.append((tool, self.tools.command(tool, None, out, inputs), out))
        # ours again in the same rounds, so the ratio is side by side too
        out = work / "out-alt-srp.pcap"
        variants.append(("srp", self.tools.command("srp", "pcap", out, inputs), out))
        runs = time_side_by_side(variants, self.repeat)
        ours = runs["srp"].best or ours_best
        for name, _, out in variants:
            say(f"  {name:6s} {runs[name].describe()}")
            if name == "srp":
                continue
            same = "n/a"
            if out.exists() and ref_hash:
                same = ("byte-identical to mergecap's" if sha256(out) == ref_hash
                        else "DIFFERENT from mergecap's")
                if self.tools.mergecap is None:
                    same = same.replace("mergecap's", "srp's")
                say(f"         output {same}")
            what = {"scapy": "scapy.utils RawPcapReader + RawPcapWriter",
                    "dpkt": "dpkt pcap.Reader + pcap.Writer"}[name]
            r = ratio(ours, runs[name].best)
            self.rows.append([f"{label}: {title}, -F pcap", what,
                              fmt_s(runs[name].best), fmt_s(ours), fmt_ratio(r),
                              "(report)", "",
                              same.split(" ")[0] + ("" if self.tools.mergecap else " to srp's")])
            if out.exists():
                out.unlink()
        if out.exists():
            out.unlink()

    # memory -----------------------------------------------------------------------------
    def memory(self, sets: list[tuple[str, list[Path]]]) -> dict:
        say("\n## Peak RSS (ru_maxrss of a fresh child per measurement)")
        have_mc = self.tools.mergecap is not None
        meter = RssMeter(sets[0][1][0].parent)
        say(f"  measured with {meter.method}; floor (/bin/true): {fmt_mb(meter.floor_kb)}")
        base = meter.measure([*self.tools.srp, "--version"])
        say(f"  srp-pcap --version (interpreter + CLI baseline): {fmt_mb(base['maxrss_kb'])}")
        results: dict[tuple[str, str, str], int | None] = {}
        for name, inputs in sets:
            work = inputs[0].parent
            say(f"  {name}: {len(inputs)} files, {total_size(inputs) / MB:.0f} MB")
            for fmt in ("pcap", None):
                for tool in (["mergecap"] if have_mc else []) + ["srp"]:
                    out = work / f"out-mem-{tool}.{fmt or 'pcapng'}"
                    r = meter.measure(self.tools.command(tool, fmt, out, inputs))
                    kb = r["maxrss_kb"] if r["rc"] == 0 else None
                    results[(name, tool, fmt or "pcapng")] = kb
                    extra = "" if r["rc"] == 0 else f"  FAILED rc={r['rc']}: {r['stderr'][-200:]}"
                    say(f"    {tool:8s} {fmt or 'pcapng':6s} {fmt_mb(r['maxrss_kb']):>8s} "
                        f"(wall {r['wall'] or 0:.2f} s){extra}")
                    if out.exists():
                        out.unlink()
        return results

    def memory_rows(self, results, small: str, large: str, sessions: str | None) -> None:
        mc_name = "mergecap" if self.tools.mergecap else "(mergecap not installed)"
        for fmt in ("pcap", "pcapng"):
            fname = "-F pcap" if fmt == "pcap" else "pcapng (default)"
            s_kb = results.get((small, "srp", fmt))
            l_kb = results.get((large, "srp", fmt))
            met = "n/a" if s_kb is None else ("yes" if s_kb / 1024 <= GOAL_RSS_MB else "**no**")
            self.rows.append([f"Peak RSS, {small}, {fname}", mc_name,
                              fmt_mb(results.get((small, "mergecap", fmt))), fmt_mb(s_kb), "",
                              f"<= {GOAL_RSS_MB} MB", met, ""])
            if s_kb and l_kb:
                growth = l_kb / s_kb - 1
                flat = "yes" if growth <= FLAT_TOLERANCE else "**no**"
                flat_text = f"{growth * 100:+.0f}% vs {small}"
            else:
                flat, flat_text = "n/a", ""
            met = flat if l_kb is None or l_kb / 1024 <= GOAL_RSS_MB else "**no**"
            self.rows.append([f"Peak RSS, {large}, {fname}", mc_name,
                              fmt_mb(results.get((large, "mergecap", fmt))), fmt_mb(l_kb),
                              flat_text, f"flat, <= {GOAL_RSS_MB} MB", met, ""])
            if sessions:
                kb = results.get((sessions, "srp", fmt))
                self.rows.append([f"Peak RSS, {sessions}, {fname}", mc_name,
                                  fmt_mb(results.get((sessions, "mergecap", fmt))), fmt_mb(kb),
                                  "", "(no goal)", "", ""])

    # everything ---------------------------------------------------------------------------
    def run(self, root: Path) -> None:
        say("# srp-pcap merge benchmark" + (" (--quick: inputs ~10x smaller)" if self.quick else ""))
        for line in machine_lines(self.tools, root):
            say(f"- {line}")
        say(f"- repeat: best of {self.repeat}; load average at start: {load()}")
        if fs_type(root) != "tmpfs":
            say("- WARNING: the work dir is not on tmpfs; disk timing is noisy")
        t_all = time.perf_counter()

        # A
        dir_a = root / "A"
        dir_a.mkdir()
        n_a = self.scale(120_000)
        t0 = time.perf_counter()
        inputs_a = make_interleaved(self.gen, dir_a, "a", 4, n_a)
        say(f"\n(generated scenario A in {time.perf_counter() - t0:.1f} s)")
        res_a = self.scenario("A", f"4 x {n_a:,} pkts", inputs_a, GOAL_A, f"<= {GOAL_A}x",
                              strict=False)
        self.alternatives(inputs_a, res_a["runs"]["srp pcap"].best, res_a["reference"], "A",
                          f"4 x {n_a:,} pkts")
        shutil.rmtree(dir_a)

        # B
        dir_b = root / "B"
        dir_b.mkdir()
        files_b = 600 if not self.quick else 60
        t0 = time.perf_counter()
        inputs_b = make_sessions(self.gen, dir_b, files_b, 300)
        say(f"\n(generated scenario B in {time.perf_counter() - t0:.1f} s)")
        res_b = self.scenario("B", f"{files_b} x ~300 pkts", inputs_b, GOAL_B,
                              f"< {GOAL_B}x", strict=True)
        if res_b["reference"] and res_b["reference"].exists():
            res_b["reference"].unlink()

        # memory
        dir_m = root / "M"
        dir_m.mkdir()
        small_mb, large_mb = self.scale(150), self.scale(300)
        t0 = time.perf_counter()
        m_small = make_sized(self.gen, dir_m, "m150-", 4, small_mb * MB)
        m_large = make_sized(self.gen, dir_m, "m300-", 4, large_mb * MB)
        say(f"\n(generated memory inputs in {time.perf_counter() - t0:.1f} s)")
        small = f"{total_size(m_small) / MB:.0f} MB input"
        large = f"{total_size(m_large) / MB:.0f} MB input"
        sessions = f"scenario B ({files_b} files, {total_size(inputs_b) / MB:.0f} MB)"
        results = self.memory([(small, m_small), (large, m_large), (sessions, inputs_b)])
        self.memory_rows(results, small, large, sessions)
        shutil.rmtree(dir_m)
        shutil.rmtree(dir_b)

        say(f"\n(total {time.perf_counter() - t_all:.0f} s; load average at end: {load()})")
        self.table()

    def table(self) -> None:
        say("\n## README table\n")
        head = ["Measurement", "Compared with", "Its figure", "srp-pcap", "Ratio srp/it",
                "Goal (issue 2)", "Met", "Output vs mergecap"]
        say("| " + " | ".join(head) + " |")
        say("|" + "|".join("---" for _ in head) + "|")
        for row in self.rows:
            say("| " + " | ".join(row) + " |")
        say("")
        say(f"Wall time, best of {self.repeat}, all commands run alternately in one run on "
            "tmpfs; a ratio below 1 means srp-pcap is faster. Peak RSS is ru_maxrss of one "
            f"fresh child. \"Flat\": at twice the input, peak RSS grows by at most "
            f"{FLAT_TOLERANCE:.0%}. The pure-Python rows are a heapq merge over each input's "
            "head record, run as their own process; their outputs are compared with "
            f"{'mergecap' if self.tools.mergecap else 'srp-pcap'}'s -F pcap output.")
        if self.quick:
            say("\n(--quick: inputs are ~10x smaller than the goals assume; the ratios and "
                "memory figures are only a smoke test.)")


def in_private_workdir(workdir: Path, keep: bool, run) -> int:
    """Call run(root) with a fresh folder inside `workdir`, removed afterwards unless `keep`
    (and `workdir` too, when this made it)."""
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    try:
        run(root)
    finally:
        if keep:
            say(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)
            if created:
                try:
                    workdir.rmdir()
                except OSError:
                    pass
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # internal modes: run in a child process of the benchmark
    if argv and argv[0] in ("_scapy", "_dpkt"):
        (scapy_merge if argv[0] == "_scapy" else dpkt_merge)(argv[1], argv[2:])
        return 0

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="inputs ~10x smaller (smoke run)")
    parser.add_argument("--workdir", type=Path, default=Path("/dev/shm/srp-bench"),
                        help="where inputs go (tmpfs; default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir's files")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    return in_private_workdir(args.workdir, args.keep, Bench(args).run)


if __name__ == "__main__":
    sys.exit(main())
