"""`srp-pcap merge` as a user runs it (`python -m srp` in a subprocess) and merge() in-process:
damaged inputs, unreadable inputs, refused formats, atomic output, thousands of inputs under
the open-file limit, and a merge path free of scapy."""

from __future__ import annotations

import heapq
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, not_a_capture, run_srp

from capgen import (
    DEFAULT_MERGE_KINDS,
    DEFAULT_START_NS,
    KINDS,
    NS_PER_S,
    Iface,
    Section,
    damage,
    random_recs,
    write_kind,
    units_per_second,
    write_pcapng,
)
from capgen import _packet_positions as packet_positions
from srp import __version__
from srp.capture import open_capture
from srp.capture.merge import merge
from srp.errors import CaptureError, UsageError

T0 = DEFAULT_START_NS


# --- helpers --------------------------------------------------------------


def make_file(directory: Path, name: str, kind: str, n: int = 8, seed: int = 0, *,
              ties: float = 0.2, out_of_order: float = 0.0, linktype: int = 1):
    """A capgen file of `kind`; returns (path, its records)."""
    recs = random_recs(random.Random(seed), n, start_ns=T0, spread_ns=5 * NS_PER_S,
                       tsresol=KINDS[kind].tsresol, ties=ties, out_of_order=out_of_order,
                       max_len=200)
    path = directory / name
    write_kind(path, kind, recs, linktype=linktype)
    return path, recs


def mergecap_order(files: list[list], concatenate: bool = False,
                   units: list[int] | None = None) -> list[tuple]:
    """The reference order, from mergecap's rules: write the earliest of the files' head
    records, on equal times the head of the file given last; never re-sort inside a file.

    Records are capgen Recs; returns (ts_ns, origlen, data) per output record. `units`, per
    file, are the timestamp units per second of its output interface: the writer floors a
    timestamp to them (as wiretap does), which moves 2^-n stamps back by up to one unit."""
    units = units or [NS_PER_S] * len(files)
    if concatenate:
        order = [(index, pos) for index, recs in enumerate(files) for pos in range(len(recs))]
    else:
        order = []
        heads = [(recs[0].ts_ns, -index, 0) for index, recs in enumerate(files) if recs]
        heapq.heapify(heads)
        while heads:
            _, rank, pos = heapq.heappop(heads)
            order.append((-rank, pos))
            if pos + 1 < len(files[-rank]):
                heapq.heappush(heads, (files[-rank][pos + 1].ts_ns, rank, pos + 1))
    out = []
    for index, pos in order:
        rec = files[index][pos]
        out.append((floor_to(rec.ts_ns, units[index]), rec.origlen, rec.data))
    return out


def floor_to(ts: int, per_second: int) -> int:
    """ts as read back after a writer stored it in units of 1/per_second s (floored)."""
    return ts * per_second // NS_PER_S * NS_PER_S // per_second


def kind_units(kinds, fmt: str = "pcapng") -> list[int]:
    """Per input kind, the output timestamp units: the input's own in pcapng, else the
    output format's (us for pcap, ns for nsecpcap)."""
    if fmt != "pcapng":
        return [10**6 if fmt == "pcap" else NS_PER_S] * len(kinds)
    return [units_per_second(KINDS[kind].tsresol) for kind in kinds]


def read_output(path: Path) -> list[tuple]:
    """(ts_ns, origlen, data) of every record of a merged file, which must be undamaged."""
    reader = open_capture(path)
    records = []
    while (batch := reader.read_batch(1 << 20)) is not None:
        records += [(ts, origlen, bytes(data)) for ts, _, origlen, data, _ in batch]
    assert reader.damage is None
    return records


def assert_no_traceback(run: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    assert "Traceback" not in run.stdout, run.stdout


def assert_one_line_error(run: subprocess.CompletedProcess, code: int, *names: str) -> None:
    """Exit `code`, and stderr is exactly one line naming every one of `names`."""
    assert_no_traceback(run)
    assert run.returncode == code, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for name in names:
        assert name in lines[0], (name, run.stderr)


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` (hidden temporaries included) with its content."""
    return {p.name: p.read_bytes() for p in folder.iterdir()}


INPUT_KINDS = ("pcap-us-le", "pcapng-ns-be", "pcapng-bin20-le")


@pytest.fixture
def inputs(tmp_path):
    """Three good inputs of INPUT_KINDS, with their records, in tmp_path/in."""
    folder = tmp_path / "in"
    folder.mkdir()
    made = [make_file(folder, f"{i}-{kind}", kind, seed=i) for i, kind in enumerate(INPUT_KINDS)]
    return [path for path, _ in made], [recs for _, recs in made]


@pytest.fixture
def out_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("fmt", ["pcapng", "pcap", "nsecpcap"])
def test_merge_order_follows_mergecap_rules(tmp_path, out_dir, fmt):
    """30 inputs of every kind (ties within and across files, out-of-order records): the
    output is in the reference order, whether records are re-encoded or copied whole
    (little-endian pcap inputs of the output's precision)."""
    kinds = [sorted(KINDS)[index % len(KINDS)] for index in range(30)]
    made = [make_file(tmp_path, f"{index:02d}", kind, n=15, seed=index, ties=0.4,
                      out_of_order=0.2) for index, kind in enumerate(kinds)]
    run = run_srp("merge", "-w", out_dir / "m", "-F", fmt, *(path for path, _ in made))
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert read_output(out_dir / "m") == mergecap_order([recs for _, recs in made],
                                                        units=kind_units(kinds, fmt))


# --- damaged input ----------------------------------------------------------


@pytest.mark.parametrize("how", ["truncate-last", "garbage-tail", "impossible-length"])
@pytest.mark.parametrize("fmt", ["pcapng", "pcap", "nsecpcap"])
@pytest.mark.parametrize("concatenate", [False, True])
def test_damaged_input_keeps_every_good_record(inputs, out_dir, how, fmt, concatenate):
    """A damaged input: exit 0, one warning per damaged file naming it and the byte offset,
    and the output holds that file's records before the damage with every other file's,
    in mergecap's order (or concatenated with -a)."""
    paths, recs = inputs
    # The pcap-us-le input (0) is copied record by record into -F pcap output: damage it too.
    damaged = {0: None, 2: None} if how == "impossible-length" else {0: None, 1: None}
    for index in damaged:
        starts = [p.offset for p in packet_positions(paths[index].read_bytes())]
        offset = damage(paths[index], how, random.Random(index))
        damaged[index] = offset
        recs[index] = [r for r, start in zip(recs[index], starts) if start < offset]
    out = out_dir / "merged"

    run = run_srp("merge", "-w", out, "-F", fmt, *(["-a"] if concatenate else []), *paths)

    assert_no_traceback(run)
    assert run.returncode == 0, run.stderr
    warnings = run.stderr.strip().splitlines()
    assert len(warnings) == len(damaged), run.stderr
    for (index, offset), line in zip(sorted(damaged.items()), warnings):
        assert "warning" in line and str(paths[index]) in line, line
        assert f"offset {offset}" in line, (offset, line)
    assert read_output(out) == mergecap_order(recs, concatenate, kind_units(INPUT_KINDS, fmt))
    assert sorted(folder_state(out_dir)) == ["merged"]


def test_only_input_damaged_before_its_first_record(tmp_path, out_dir):
    """A single input whose only record is cut short: exit 0, a warning, and an output
    file that holds no records."""
    path, _ = make_file(tmp_path, "one.pcapng", "pcapng-le", n=1)
    offset = damage(path, "truncate-last")
    run = run_srp("merge", "-w", out_dir / "m.pcapng", path)
    assert_no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert str(path) in run.stderr and f"offset {offset}" in run.stderr
    assert read_output(out_dir / "m.pcapng") == []


def test_damaged_input_in_process(inputs, tmp_path):
    """merge() reports damage in result.warnings, counts the packets it wrote."""
    paths, recs = inputs
    offset = damage(paths[0], "garbage-tail")
    result = merge(paths, tmp_path / "m.pcapng")
    assert len(result.warnings) == 1 and str(offset) in result.warnings[0]
    assert result.packets == sum(map(len, recs))
    assert read_output(tmp_path / "m.pcapng") == mergecap_order(recs,
                                                                units=kind_units(INPUT_KINDS))


# --- inputs that are not captures -------------------------------------------


@pytest.mark.parametrize("what", ["text", "empty", "missing", "directory"])
@pytest.mark.parametrize("position", [0, 3])
def test_unreadable_input_fails_without_output(inputs, out_dir, what, position):
    """Text, an empty file, a missing file or a directory among good inputs: exit 1, one
    line naming it, no output file and no temporary left in the output folder."""
    paths, _ = inputs
    bad = not_a_capture(paths[0].parent, what)
    args = list(paths)
    args.insert(position, bad)

    run = run_srp("merge", "-w", out_dir / "merged.pcapng", *args)

    assert_one_line_error(run, 1, bad.name)
    assert folder_state(out_dir) == {}


def test_unreadable_input_in_process(inputs, tmp_path):
    """merge() raises CaptureError (not another exception) and writes nothing."""
    paths, _ = inputs
    bad = not_a_capture(tmp_path, "text")
    with pytest.raises(CaptureError, match=bad.name):
        merge([*paths, bad], tmp_path / "m.pcapng")
    with pytest.raises(CaptureError):
        merge([io.BytesIO(b"")], tmp_path / "m.pcapng")
    assert not (tmp_path / "m.pcapng").exists()


def test_output_in_missing_folder(inputs, tmp_path):
    """An output path whose folder does not exist: exit 1, one line, no traceback."""
    paths, _ = inputs
    run = run_srp("merge", "-w", tmp_path / "nowhere" / "m.pcapng", *paths)
    assert_one_line_error(run, 1, "nowhere")


# --- formats the inputs cannot satisfy -----------------------------------------


@pytest.mark.parametrize("fmt", ["pcap", "nsecpcap"])
def test_pcap_output_refuses_different_link_types(tmp_path, out_dir, fmt):
    """-F pcap / nsecpcap with inputs of link types 1 and 105: exit 2, one line, nothing
    written; -F pcapng merges the same inputs."""
    a, _ = make_file(tmp_path, "a.pcap", "pcap-us-le", linktype=1)
    b, _ = make_file(tmp_path, "b.pcap", "pcap-ns-le", linktype=105)

    run = run_srp("merge", "-w", out_dir / "m", "-F", fmt, a, b)

    assert_one_line_error(run, 2)
    assert folder_state(out_dir) == {}
    ok = run_srp("merge", "-w", out_dir / "m", a, b)
    assert ok.returncode == 0, ok.stderr


def test_pcap_output_refuses_a_link_type_described_mid_file(tmp_path, out_dir):
    """A second link type that only appears in an IDB after the first packets is found
    while the merge is writing: still exit 2 and no output, no temporary."""
    first = random_recs(random.Random(1), 50, start_ns=T0, spread_ns=NS_PER_S)
    later = random_recs(random.Random(2), 5, start_ns=T0 + 2 * NS_PER_S, spread_ns=NS_PER_S)
    for rec in later:
        rec.iface = 1
    mixed = tmp_path / "mixed.pcapng"
    write_pcapng(mixed, [Section([Iface(1, 65535)], [*first, Iface(105, 65535), *later])])
    plain, _ = make_file(tmp_path, "plain.pcap", "pcap-us-le")

    run = run_srp("merge", "-w", out_dir / "m.pcap", "-F", "pcap", plain, mixed)

    assert_one_line_error(run, 2)
    assert folder_state(out_dir) == {}
    with pytest.raises(UsageError):
        merge([plain, mixed], out_dir / "m.pcap", format="pcap")
    assert folder_state(out_dir) == {}


def test_bad_command_line_is_a_usage_error(inputs, out_dir):
    """An unknown -F value: exit 2, no traceback, nothing written."""
    paths, _ = inputs
    run = run_srp("merge", "-w", out_dir / "m", "-F", "erf", *paths)
    assert_no_traceback(run)
    assert run.returncode == 2
    assert folder_state(out_dir) == {}


# --- the existing output ----------------------------------------------------------


@pytest.mark.parametrize("failure", ["missing", "text", "mixed-linktypes"])
def test_existing_output_untouched_when_the_merge_fails(tmp_path, out_dir, failure):
    """When a merge fails, a file already at the output path keeps its bytes and mtime,
    and nothing else appears beside it."""
    a, _ = make_file(tmp_path, "a.pcap", "pcap-us-le")
    if failure == "mixed-linktypes":
        b, _ = make_file(tmp_path, "b.pcap", "pcap-us-le", linktype=105)
        args = ["-F", "pcap", a, b]
    else:
        args = [a, not_a_capture(tmp_path, failure)]
    out = out_dir / "merged.pcap"
    out.write_bytes(b"an earlier result, precious")
    os.utime(out, (1_000_000_000, 1_000_000_000))

    run = run_srp("merge", "-w", out, *args)

    assert_one_line_error(run, 2 if failure == "mixed-linktypes" else 1)
    assert folder_state(out_dir) == {"merged.pcap": b"an earlier result, precious"}
    assert out.stat().st_mtime == 1_000_000_000


def test_existing_output_replaced_when_the_merge_succeeds(inputs, out_dir):
    paths, recs = inputs
    out = out_dir / "merged.pcapng"
    out.write_bytes(b"old")
    run = run_srp("merge", "-w", out, *paths)
    assert run.returncode == 0 and run.stderr == ""
    assert read_output(out) == mergecap_order(recs, units=kind_units(INPUT_KINDS))
    assert sorted(folder_state(out_dir)) == ["merged.pcapng"]


# --- the command itself ---------------------------------------------------------


def test_version():
    run = run_srp("--version")
    assert_no_traceback(run)
    assert run.returncode == 0
    assert __version__ in run.stdout and "srp-pcap" in run.stdout


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_NOFILE is POSIX")
def test_3000_inputs_under_an_open_file_limit_of_1024(tmp_path):
    """3,000 small inputs of mixed kinds (ties across files, a few out-of-order records),
    merged by the CLI under RLIMIT_NOFILE 1024: exit 0, no warning, every packet, in
    mergecap's order."""
    import resource

    folder = tmp_path / "many"
    folder.mkdir()
    rng = random.Random(3000)
    paths, files, kinds = [], [], []
    for index in range(3000):
        kind = DEFAULT_MERGE_KINDS[index % len(DEFAULT_MERGE_KINDS)]
        recs = random_recs(rng, 3, start_ns=T0, spread_ns=10 * NS_PER_S,
                           tsresol=KINDS[kind].tsresol, ties=0.3, out_of_order=0.2,
                           min_len=40, max_len=60)
        path = folder / f"{index:04d}"
        write_kind(path, kind, recs)
        paths.append(path.name)
        files.append(recs)
        kinds.append(kind)
    out = tmp_path / "merged.pcapng"

    def limit_open_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    limit = subprocess.run([sys.executable, "-c", "import resource; "
                            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
                           capture_output=True, text=True, preexec_fn=limit_open_files)
    assert limit.stdout.strip() == "1024"  # the limit really applies to the child
    run = subprocess.run([sys.executable, "-m", "srp", "merge", "-w", str(out), *paths],
                         capture_output=True, text=True, timeout=300, cwd=folder,
                         preexec_fn=limit_open_files,
                         env={**os.environ, "PYTHONPATH": str(REPO)})

    assert_no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    merged = read_output(out)
    assert len(merged) == 9000
    assert merged == mergecap_order(files, units=kind_units(kinds))


def test_merge_path_does_not_import_scapy(inputs, tmp_path):
    """Importing and running merge() leaves scapy out of sys.modules."""
    paths, _ = inputs
    code = (
        "import sys\n"
        "from srp.capture.merge import merge\n"
        f"result = merge({[str(p) for p in paths]!r}, {str(tmp_path / 'm.pcapng')!r})\n"
        "assert result.packets > 0\n"
        "assert 'scapy' not in sys.modules, sorted(m for m in sys.modules if 'scapy' in m)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr


def test_cli_merge_does_not_import_scapy(inputs, tmp_path):
    """The same through the command line: `python -X importtime` lists no scapy module."""
    paths, _ = inputs
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "srp", "merge", "-w",
                          str(tmp_path / "m.pcapng"), *map(str, paths)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "scapy" not in run.stderr
