"""Shared fixtures: the reference mergecap, the shared corpus, and running the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
    """After a test that used a module's simulator fixture: its faults off and its log of
    requests for uncaptured sessions emptied, so the next test starts clean."""
    if fixture_name in request.fixturenames:
        simulator = request.getfixturevalue(fixture_name)
        simulator.clear_faults()
        simulator.uncaptured_requests.clear()
