"""Shared fixtures: the reference mergecap, the shared corpus, running the CLI, and the checks
every vendor command's end-to-end tests make of a run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def mergecap() -> str:
    """Wireshark's mergecap, the oracle; tests that need it skip where it is missing."""
    path = shutil.which("mergecap")
    if path is None:
        pytest.skip("mergecap is not installed (Debian: apt-get install tshark)")
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus: captures written by other tools; skip cleanly when absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside the checkout")
    return CORPUS


def run_srp(*args: str, env: dict | None = None, preexec_fn=None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m srp ARGS` as a user would, capturing text output."""
    return subprocess.run([sys.executable, "-m", "srp", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec_fn, cwd=REPO)


def reset_simulator(request, fixture_name: str) -> None:
    """After a test that used a module's simulator fixture: its faults off and, for a
    simulator that keeps one, its log of requests for uncaptured sessions emptied, so the
    next test starts clean."""
    if fixture_name in request.fixturenames:
        simulator = request.getfixturevalue(fixture_name)
        simulator.clear_faults()
        if hasattr(simulator, "uncaptured_requests"):
            simulator.uncaptured_requests.clear()


# --- running a vendor command against a simulator, and what every result must satisfy ---

RESULT_KEYS = {"status", "pcap", "sha256", "packets", "bytes", "sessions", "first", "last",
               "warnings", "errors"}


@dataclass
class Run:
    """One vendor command run against a simulator."""

    code: int
    out: str
    err: str
    report: dict | None         # the --json object (last stdout line), if any
    requests: list              # what the simulator saw during this run
    seconds: float


def run_against(simulator, *args: str, env: dict | None = None, as_json: bool = True,
                run_type: type[Run] = Run) -> Run:
    """Run `python -m srp ARGS` against `simulator`: the --json object is checked to be the
    last line of stdout with the keys every vendor gives, and no traceback is ever printed."""
    seen = len(simulator.requests)
    started = time.monotonic()
    done = run_srp(*args, env=env, timeout=120)
    seconds = time.monotonic() - started
    report = None
    if as_json:
        lines = done.stdout.strip().splitlines()
        assert lines, f"no stdout; stderr: {done.stderr}"
        report = json.loads(lines[-1])
        assert isinstance(report, dict) and RESULT_KEYS <= set(report), report
        assert set(report["sessions"]) >= {"found", "downloaded", "failed"}
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return run_type(done.returncode, done.stdout, done.stderr, report,
                    list(simulator.requests[seen:]), seconds)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_nothing_half_written(pcap_dir: Path) -> None:
    """No temporary file, work folder or lock survives a run, whatever its outcome."""
    leftovers = [p.name for p in Path(pcap_dir).rglob("*")
                 if p.name.endswith(".part") or p.name.startswith(".srp-work-")
                 or p.name.endswith(".lock") or p.name.endswith(".download")]
    assert leftovers == []
    for path in Path(pcap_dir).iterdir():
        assert path.is_file(), f"unexpected folder {path}"


def assert_result_intact(run: Run, pcap_dir: Path) -> dict:
    """The capture named by the report exists inside pcap_dir, its SHA-256 is the one the
    report and the manifest beside it give; returns the manifest."""
    report = run.report
    pcap = Path(report["pcap"])
    assert pcap.is_absolute() and pcap.parent == Path(pcap_dir).resolve()
    assert sha256(pcap) == report["sha256"]
    assert pcap.stat().st_size == report["bytes"]
    manifest = json.loads(Path(report["manifest"]).read_text())
    assert Path(report["manifest"]).parent == Path(pcap_dir).resolve()
    assert manifest["result"]["sha256"] == report["sha256"]
    return manifest


def assert_secret_nowhere(secret: str, run: Run, pcap_dir: Path) -> None:
    """Not in the output, not in any file of the run, not anywhere the simulator saw it."""
    assert secret not in run.out and secret not in run.err
    for path in Path(pcap_dir).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # The simulator masks the auth headers it logs; the secret must be nowhere else it saw
    # (not in a URL, not in a body, not in another header).
    for request in run.requests:
        assert secret not in request.path and secret.encode() not in request.body
        assert secret not in json.dumps(request.headers)


def read_packets(path) -> list[tuple[int, bytes]]:
    from srp.capture import open_capture

    reader = open_capture(Path(path))
    packets = []
    while (batch := reader.read_batch(1 << 16)) is not None:
        packets += [(ts, bytes(data)) for ts, _, _, data, _ in batch]
    return packets


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]
