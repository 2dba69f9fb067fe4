"""`srp-pcap demo`, the README's first command: three simulators, three real retrievals,
three summaries, and the captures left in the folder it names."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, run_srp

from srp.capture import open_capture


def count_packets(path) -> int:
    packets = 0
    with open_capture(path) as reader:
        while (batch := reader.read_batch(65536)) is not None:
            packets += len(batch)
    return packets


def test_the_demo_retrieves_from_all_three_simulators_and_keeps_the_captures(tmp_path):
    folder = tmp_path / "demo"
    run = run_srp("demo", "--pcap-dir", folder, timeout=180)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    out = run.stdout
    for heading in ("srp-pcap netmon: OK: 4 sessions merged", "srp-pcap stamus: OK: 2 flows",
                    "srp-pcap cisco: OK: 2 IP logs merged"):
        assert heading in out
    assert "www.example.com" in out and "tls sni:" in out
    assert f"The captures and their manifests are in {folder.resolve()}" in out
    manifests = sorted(folder.glob("*.json"))
    assert [m.name.split("_")[0] for m in manifests] == ["cisco", "netmon", "stamus"]
    for manifest in manifests:
        result = json.loads(manifest.read_text())["result"]
        assert result["status"] == "ok"
        assert count_packets(result["pcap"]) == result["packets"] > 0
        assert result["summary"]["packets"] == result["packets"]
    # The simulators' random keys are masked in the command lines the demo shows.
    assert out.count("--api-key ***") == 1 and out.count("--password ***") == 1


HIDE_SCAPY = ("import sys; sys.modules['scapy'] = None; "   # as if the extra were not installed
              "from srp.cli import main; main(prog_name='srp-pcap')")


def without_scapy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_SCAPY, *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def test_without_the_simulators_extra_the_demo_says_what_to_install(tmp_path):
    run = without_scapy("demo", "--pcap-dir", str(tmp_path / "demo"))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "srp-pcap: error: 'srp-pcap demo' needs the simulators, an optional extra that is not "
        "installed here (scapy missing): pip install 'srp-pcap[simulators]'"]
    assert not (tmp_path / "demo").exists()


def test_without_the_simulators_extra_simulate_says_what_to_install():
    run = without_scapy("simulate", "netmon", "--port", "0")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "'srp-pcap simulate' needs the simulators" in run.stderr
    assert "pip install 'srp-pcap[simulators]'" in run.stderr
    # The other commands are all there.
    listing = without_scapy("--help")
    assert listing.returncode == 0 and "netmon" in listing.stdout and "simulate" in listing.stdout
