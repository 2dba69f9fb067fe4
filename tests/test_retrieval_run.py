"""The retrieval core on its own, with a vendor that serves files from this machine: how a
session's download and its unpacking make one result."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import py7zr
import pytest
from conftest import read_packets

from srp.capture.magic import sniff
from srp.retrieval import run
from srp.retrieval.download import ByteBudget
from srp.retrieval.run import Limits, retrieve
from srp.retrieval.vendor import Downloaded, Found, NoData, Session, Vendor
from srp.simulators.capfile import LINKTYPE_RAW, write_capture


def capture(path: Path, *seconds: int) -> Path:
    """A classic pcap, one 4-byte raw-IP packet per second given."""
    write_capture(path, [(s * 10**9, b"\x45\x00\x00\x04") for s in seconds],
                  linktype=LINKTYPE_RAW)
    return path


class LocalVendor(Vendor):
    """Sessions served from files: `bodies` maps a session id to the file it downloads as."""

    name = "local"
    serves_archives = True

    def __init__(self, bodies: dict[str, Path]):
        super().__init__(client=None)   # nothing goes over the network
        self.bodies = bodies
        self.fetched: list[str] = []

    def request(self) -> dict:
        return {"vendor": self.name, "sessions": sorted(self.bodies)}

    def find_sessions(self) -> Found:
        return Found([Session(id=key, start=f"2026-11-22T10:00:0{n}Z")
                      for n, key in enumerate(self.bodies)], NoData())

    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        shutil.copyfile(self.bodies[session.id], dest)
        self.fetched.append(session.id)
        data = dest.read_bytes()
        return Downloaded(dest, len(data), hashlib.sha256(data).hexdigest(), sniff(data))


def archive(path: Path, members: dict[str, Path]) -> Path:
    with py7zr.SevenZipFile(path, "w") as seven:
        for name, member in members.items():
            seven.write(member, name)
    return path


def seconds(path: str) -> list[int]:
    """The second of every packet in a capture, in file order."""
    return [ts // 10**9 for ts, _data in read_packets(path)]


def test_an_archive_with_one_unreadable_capture_fails_its_session_whole(tmp_path):
    # Its readable member is not merged either: a session is in the result entire or not.
    cut = capture(tmp_path / "cut.pcap")
    cut.write_bytes(cut.read_bytes()[:10])   # a header cut short
    bodies = {
        "good": archive(tmp_path / "good.7z", {"a.pcap": capture(tmp_path / "1.pcap", 1, 3)}),
        "mixed": archive(tmp_path / "mixed.7z", {"a.pcap": capture(tmp_path / "2.pcap", 2),
                                                 "b.pcap": cut}),
    }
    outcome = retrieve(LocalVendor(bodies), tmp_path / "out", "7",
                       Limits(max_sessions=10, max_bytes=1 << 30, concurrency=2))
    assert outcome.status == "partial"
    assert (outcome.downloaded, outcome.failed) == (1, 1)
    [error] = outcome.errors
    assert error.startswith("session mixed:") and "truncated pcap file header" in error
    assert seconds(outcome.pcap) == [1, 3]


def test_a_download_does_not_wait_for_the_archive_before_it_to_be_unpacked(tmp_path,
                                                                          monkeypatch):
    # One download at a time, and no archive unpacked until every download is in: the
    # downloads run on while the unpacker is busy.
    bodies = {f"s{n}": archive(tmp_path / f"s{n}.7z",
                               {"a.pcap": capture(tmp_path / f"{n}.pcap", n)})
              for n in range(4)}
    vendor = LocalVendor(bodies)
    all_fetched = threading.Event()
    fetch = vendor.fetch

    def counted_fetch(*args):
        downloaded = fetch(*args)
        if len(vendor.fetched) == len(bodies):
            all_fetched.set()
        return downloaded

    real_unpack = run.unpack

    def unpack_after_all_downloads(*args):
        if not all_fetched.wait(10):
            pytest.fail("a download waited for an earlier archive to be unpacked")
        return real_unpack(*args)

    monkeypatch.setattr(vendor, "fetch", counted_fetch)
    monkeypatch.setattr(run, "unpack", unpack_after_all_downloads)
    outcome = retrieve(vendor, tmp_path / "out", "8",
                       Limits(max_sessions=10, max_bytes=1 << 30, concurrency=1))
    assert outcome.status == "ok", outcome.errors
    assert seconds(outcome.pcap) == [0, 1, 2, 3]
