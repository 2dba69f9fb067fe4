"""What a retrieval would pull, and when its result is final: `--preview`, windows still
open, and top-up re-runs, end to end (python -m srp, a subprocess) against the NetMon, Stamus
and Cisco simulators over real HTTPS on loopback.

What issue 15 asks: a preview requests no capture (no Stamus upload or extraction, no Cisco
IP log), prints at most 40 lines, exits 0 or 3 (1 for a refused key), has the JSON keys, and
writes nothing but its log line; a window still open warns with its UTC close and leaves a
result that is not final; a re-run after new sessions appear downloads exactly the new ones
into a capture holding old and new; a closed window's result is reused with no request; two
runs at once never corrupt each other.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import (
    ALARM_DATE,
    NOW,
    assert_nothing_half_written,
    assert_result_intact,
    one_error_line,
    read_packets,
    run_against,
    run_at_once,
    sha256,
)

from srp.simulators.cisco import AlertSpec as CiscoAlert
from srp.simulators.cisco import CiscoSimulator
from srp.simulators.faults import Fault
from srp.simulators.netmon import NetMonSimulator, SessionSpec
from srp.simulators.stamus import AlertSpec, StamusSimulator

KEY = "preview-key-1f9e3c77"
QUERY = "preview.example"
SIGNATURE = 2030001
MOMENT = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)   # an alarm raised now


def session(number: int, minutes_before: float, around: dt.datetime = NOW, **fields):
    return SessionSpec(id=f"p{number}", domain=QUERY,
                       start=around - dt.timedelta(minutes=minutes_before),
                       client_ip=f"10.9.0.{number}", **{"payload_packets": 2, **fields})


def netmon(simulator, pcap_dir, *extra, alarm_date=ALARM_DATE, key=KEY, as_json=True):
    return run_against(simulator, "netmon", "--address", simulator.url, "--api-key", key,
                       "--query", QUERY, "--alarm-date", alarm_date, "--alarm-id", "6001",
                       "--pcap-dir", str(pcap_dir), *extra, as_json=as_json)


def capture_gets(run) -> list[str]:
    return [r.path for r in run.requests if r.method == "GET"]


def packets_of(paths) -> list:
    return sorted(packet for path in paths for packet in read_packets(path))


@pytest.fixture
def closed():
    """Four captured sessions (one of them twice the size) and one not captured, an hour
    or so before a past alarm: its window closed long ago."""
    specs = [session(1, 50), session(2, 40, payload_packets=6), session(3, 30),
             session(4, 20), session(5, 10, captured=False)]
    with NetMonSimulator(specs, api_key=KEY) as simulator:
        yield simulator


# --- --preview ---

def test_a_preview_fetches_nothing_and_says_what_would_be_fetched(closed, tmp_path):
    run = netmon(closed, tmp_path, "--preview", as_json=False)
    assert run.code == 0, run.err
    assert capture_gets(run) == []
    lines = run.out.splitlines()
    assert len(lines) <= 40
    assert lines[0] == "srp-pcap netmon: PREVIEW: would fetch 4 sessions of 5 found"
    assert "sessions: 5 found, 4 captured, 4 to fetch" in lines
    announced = sum(closed.session(f"p{n}").answer()["bytes"] for n in range(1, 5))
    size_line = next(line for line in lines if line.startswith("size:"))
    assert "announced" in size_line
    assert any(line.startswith("span:     ") for line in lines)
    busiest = next(line for line in lines if line.startswith("busiest:"))
    assert "203.0.113.10 (4)" in busiest and "10.9.0.1 (1)" in busiest
    assert any(line.startswith("caps:") and "nothing cut" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["srp-pcap.log"]
    log = (tmp_path / "srp-pcap.log").read_text()
    assert "outcome=preview-ok" in log
    report = netmon(closed, tmp_path, "--preview").report
    assert report["preview"] is True and report["pcap"] is None
    assert report["sessions"]["found"] == 5 and report["sessions"]["planned"] == 4
    assert report["bytes"] == announced


def test_a_preview_says_what_the_caps_would_cut(closed, tmp_path):
    run = netmon(closed, tmp_path, "--preview", "--max-sessions", "2", as_json=False)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    caps = next(number for number, line in enumerate(lines) if line.startswith("caps:"))
    assert lines[caps] == "caps:     --max-sessions 2, --max-bytes 2.0 GiB"
    assert lines[caps + 1] == ("          cut to the first 2 of 4 captured sessions by "
                               "--max-sessions")
    assert netmon(closed, tmp_path, "--preview", "--max-sessions", "2"
                  ).report["sessions"]["planned"] == 2


def test_a_preview_of_nothing_exits_3_and_a_refused_key_1(closed, tmp_path):
    nothing = run_against(closed, "netmon", "--address", closed.url, "--api-key", KEY,
                          "--query", "nothing.example", "--alarm-date", ALARM_DATE,
                          "--pcap-dir", str(tmp_path), "--preview")
    assert nothing.code == 3 and nothing.report["status"] == "no-data"
    refused = netmon(closed, tmp_path, "--preview", key="wrong-key-123", as_json=False)
    assert refused.code == 1
    assert "HTTP 401" in one_error_line(refused.err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["srp-pcap.log"]


def test_a_preview_after_a_final_result_says_it_would_be_reused(closed, tmp_path):
    first = netmon(closed, tmp_path)
    assert first.code == 0 and first.report["final"] is True
    run = netmon(closed, tmp_path, "--preview", as_json=False)
    assert run.code == 0 and capture_gets(run) == []
    assert "PREVIEW: an earlier result would be reused" in run.out
    assert Path(first.report["pcap"]).name in run.out


def test_a_stamus_preview_uploads_and_extracts_nothing(tmp_path):
    alerts = [AlertSpec(signature_id=SIGNATURE, flow_id=flow, es_id=f"pv{flow}",
                        timestamp=NOW - dt.timedelta(minutes=flow)) for flow in (5, 15, 25)]
    with StamusSimulator(alerts, token=KEY) as simulator:
        run = run_against(simulator, "stamus", "--address", simulator.url, "--token", KEY,
                          "--signature-id", str(SIGNATURE), "--alarm-date", ALARM_DATE,
                          "--pcap-dir", str(tmp_path), "--preview", as_json=False)
    assert run.code == 0, run.err
    assert [urlsplit(r.path).path for r in run.requests] == ["/rest/rules/es/alerts_tail/"]
    assert run.out.startswith("srp-pcap stamus: PREVIEW: would fetch 3 flows of 3 found")
    assert "the appliance announces no sizes" in run.out


def test_a_cisco_preview_downloads_no_ip_log(tmp_path):
    alert = CiscoAlert(6821859430077, NOW - dt.timedelta(minutes=3), (701, 702))
    with CiscoSimulator([alert], password=KEY) as simulator:
        run = run_against(simulator, "cisco", "--address", simulator.url, "--username",
                          "sdee-viewer", "--password", KEY, "--event-id", str(alert.event_id),
                          "--alarm-date", ALARM_DATE, "--pcap-dir", str(tmp_path),
                          "--preview")
    assert run.code == 0, run.err
    assert [r for r in run.requests if r.method == "POST"] == []
    assert run.report["sessions"]["planned"] == 2


# --- windows still open, and top-ups ---

@pytest.fixture
def open_window():
    """Sessions of an alarm raised a moment ago: its window (15 minutes after) is open."""
    specs = [session(1, 20, MOMENT), session(2, 10, MOMENT), session(3, 5, MOMENT)]
    with NetMonSimulator(specs, api_key=KEY) as simulator:
        yield simulator


def now_alarm(simulator, pcap_dir, *extra):
    return netmon(simulator, pcap_dir, *extra, alarm_date=MOMENT.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_an_open_window_warns_and_its_result_is_not_final(open_window, tmp_path):
    run = now_alarm(open_window, tmp_path)
    assert run.code == 0, run.err
    closes = (MOMENT + dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    warning = next(w for w in run.report["warnings"] if "still open" in w)
    assert f"it closes at {closes}" in warning
    assert run.report["final"] is False and run.report["window_closes"] == closes
    manifest = assert_result_intact(run, tmp_path)
    assert manifest["result"]["final"] is False
    assert manifest["result"]["window_closes"] == closes


def test_a_rerun_fetches_exactly_the_sessions_indexed_since(open_window, tmp_path):
    first = now_alarm(open_window, tmp_path)
    assert sorted(capture_gets(first)) == [f"/api/session/p{n}/pcap" for n in (1, 2, 3)]
    open_window.add(session(4, 1, MOMENT))
    open_window.add(session(6, -2, MOMENT))          # after the alarm, inside --after
    again = now_alarm(open_window, tmp_path)
    assert again.code == 0, again.err
    assert sorted(capture_gets(again)) == ["/api/session/p4/pcap", "/api/session/p6/pcap"]
    assert again.report["new"] == 2 and again.report["reused"] is False
    assert again.report["sessions"]["downloaded"] == 5
    assert "(2 new, with the earlier capture's 3)" in again.report["reason"]
    every = [open_window.capture_path(f"p{n}") for n in (1, 2, 3, 4, 6)]
    assert packets_of([again.report["pcap"]]) == packets_of(every)
    assert again.report["final"] is False          # the window is still open
    manifest = assert_result_intact(again, tmp_path)
    assert sorted(e["id"] for e in manifest["sessions"]) == ["p1", "p2", "p3", "p4", "p6"]
    assert sorted(tmp_path.glob("*.pcap")) == [Path(again.report["pcap"])]
    assert_nothing_half_written(tmp_path)
    # Nothing new since: no download, the same capture, and still not final.
    third = now_alarm(open_window, tmp_path)
    assert third.code == 0 and capture_gets(third) == []
    assert third.report["sha256"] == again.report["sha256"] and third.report["new"] == 0
    assert "no new session since the earlier run" in third.report["reason"]


def test_a_closed_windows_result_is_reused_with_no_request(closed, tmp_path):
    first = netmon(closed, tmp_path)
    assert first.report["final"] is True and first.report["window_closes"] is None
    assert not any("still open" in w for w in first.report["warnings"])
    seen = len(closed.requests)
    again = netmon(closed, tmp_path)
    assert again.code == 0 and again.report["reused"] is True
    assert again.report["new"] == 0 and again.report["final"] is True
    assert [r for r in closed.requests[seen:] if r.method == "GET"] == []


def test_two_runs_at_once_of_an_open_window_never_corrupt_each_other(open_window, tmp_path):
    reports = run_at_once("netmon", "--address", open_window.url, "--api-key", KEY,
                          "--query", QUERY, "--alarm-id", "6001", "--alarm-date",
                          MOMENT.strftime("%Y-%m-%dT%H:%M:%SZ"), "--pcap-dir", tmp_path,
                          "--ca-bundle", open_window.ca_bundle)
    gets = [r for r in open_window.requests if r.method == "GET"]
    assert len(gets) == 3                             # the second run had nothing new
    assert sorted(report["new"] for report in reports) == [0, 3]
    (pcap,) = {report["pcap"] for report in reports}
    assert sha256(pcap) == reports[0]["sha256"] == reports[1]["sha256"]
    assert packets_of([pcap]) == packets_of([open_window.capture_path(f"p{n}")
                                             for n in (1, 2, 3)])
    assert_nothing_half_written(tmp_path)


def test_a_stamus_rerun_extracts_only_the_new_flow(tmp_path):
    def alert(flow):
        return AlertSpec(signature_id=SIGNATURE, flow_id=flow, es_id=f"tu{flow}",
                         timestamp=MOMENT - dt.timedelta(minutes=flow))

    with StamusSimulator([alert(7), alert(9)], token=KEY) as simulator:
        def stamus():
            return run_against(simulator, "stamus", "--address", simulator.url, "--token",
                               KEY, "--signature-id", str(SIGNATURE), "--alarm-id", "6002",
                               "--alarm-date", MOMENT.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "--pcap-dir", str(tmp_path))

        first = stamus()
        assert first.code == 0 and first.report["final"] is False, first.err
        simulator.add(alert(3))
        again = stamus()
        assert again.code == 0, again.err
        uploads = [r for r in again.requests if "/upload/" in r.path]
        assert len(uploads) == 1 and b'"flow_id": 3' in uploads[0].body
        assert again.report["new"] == 1
        expected = packets_of([simulator.flow_capture(flow) for flow in (3, 7, 9)])
        assert packets_of([again.report["pcap"]]) == expected


def test_a_cisco_rerun_fetches_only_the_ip_log_that_was_missing(tmp_path):
    alert = CiscoAlert(6821859430088, NOW - dt.timedelta(minutes=3), (801, 802))
    with CiscoSimulator([alert], password=KEY,
                        faults=[Fault("never-completes", sessions={"802"})]) as simulator:
        def cisco():
            return run_against(simulator, "cisco", "--address", simulator.url, "--username",
                               "sdee-viewer", "--password", KEY, "--event-id",
                               str(alert.event_id), "--alarm-id", "6003", "--alarm-date",
                               ALARM_DATE, "--wait", "1", "--pcap-dir", str(tmp_path))

        first = cisco()
        assert first.code == 4 and first.report["final"] is False, first.err
        simulator.clear_faults()
        again = cisco()
        assert again.code == 0, again.err
        posts = [parse_qs(urlsplit(r.path).query)["ipLogId"] for r in again.requests
                 if r.method == "POST"]
        assert posts == [["802"]]
        assert again.report["final"] is True and again.report["new"] == 1
        expected = packets_of([simulator.capture_path(log_id) for log_id in (801, 802)])
        assert packets_of([again.report["pcap"]]) == expected
