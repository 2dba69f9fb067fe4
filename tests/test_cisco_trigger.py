"""The trigger packet of a verbose Cisco IPS alert, end to end (python -m srp cisco, a
subprocess) against the Cisco simulator over real HTTPS on loopback.

What issue 16 asks: a verbose alert without an IP log gives a one-packet capture
byte-identical to the encoded packet, at the alert's time; with an IP log the capture is the
IP log alone; `--trigger-only` makes no iplog-server request; a damaged dump is a clear
warning, never a traceback; the summary shows the signature and the matched bytes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import ALARM_DATE, NOW, one_error_line, read_packets, run_against

from srp.capture import open_capture
from srp.capture.headers import LINKTYPE_ETHERNET, LINKTYPE_RAW
from srp.simulators.cisco import AlertSpec, CiscoSimulator
from srp.simulators.faults import Fault

PASSWORD = "trigger-pass-4c1b"
ALERT_TIME = NOW - dt.timedelta(minutes=2, microseconds=-123456)
# Event ids: verbose without IP logs (four dumps), verbose with one, plain without.
ETHERNET, RAW_IP, TRUNCATED, NOT_BASE64, WITH_LOG, PLAIN = (
    6821859430100 + n for n in range(6))
ALERTS = [
    AlertSpec(ETHERNET, ALERT_TIME, verbose=True),
    AlertSpec(RAW_IP, ALERT_TIME, verbose=True, trigger_dump="raw-ip", context=False),
    AlertSpec(TRUNCATED, ALERT_TIME, verbose=True, trigger_dump="truncated"),
    AlertSpec(NOT_BASE64, ALERT_TIME, verbose=True, trigger_dump="not-base64"),
    AlertSpec(WITH_LOG, ALERT_TIME, (901,), verbose=True),
    AlertSpec(PLAIN, ALERT_TIME),
]


@pytest.fixture(scope="module")
def sensor():
    with CiscoSimulator(ALERTS, password=PASSWORD) as simulator:
        yield simulator


def cisco(sensor, pcap_dir, event_id, *extra, as_json=True):
    return run_against(sensor, "cisco", "--address", sensor.url, "--username", "sdee-viewer",
                       "--password", PASSWORD, "--event-id", str(event_id), "--alarm-id",
                       str(event_id % 100000), "--alarm-date", ALARM_DATE, "--pcap-dir",
                       str(pcap_dir), *extra, as_json=as_json)


def records(path) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(link type, [(time ns, original length, bytes)]) of a one-interface capture."""
    with open_capture(path) as reader:
        found = []
        while (batch := reader.read_batch(1024)) is not None:
            found += [(ts, origlen, bytes(data)) for ts, _, origlen, data, _ in batch]
        return reader.interfaces[0].linktype, found


def alert_ns() -> int:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (ALERT_TIME - epoch) // dt.timedelta(microseconds=1) * 1000


def iplog_posts(run) -> list:
    return [r.path for r in run.requests if r.method == "POST"]


def test_a_verbose_alert_without_an_ip_log_gives_its_trigger_packet(sensor, tmp_path):
    run = cisco(sensor, tmp_path, ETHERNET)
    assert run.code == 0, run.err
    report = run.report
    assert report["status"] == "ok" and report["reason"] == "the alert's trigger packet alone"
    assert report["warnings"][0].startswith("only the alert's trigger packet was available: "
                                            f"alert {ETHERNET}")
    assert "has no IP log" in report["warnings"][0]
    linktype, packets = records(report["pcap"])
    assert linktype == LINKTYPE_ETHERNET
    assert packets == [(alert_ns(), len(sensor.trigger_dump(ETHERNET)),
                        sensor.trigger_dump(ETHERNET))]
    assert sensor.trigger_dump(ETHERNET) == sensor.trigger_frame(ETHERNET)
    assert report["final"] is True and iplog_posts(run) == []


def test_the_summary_shows_the_signature_and_the_matched_bytes(sensor, tmp_path):
    run = cisco(sensor, tmp_path, ETHERNET, as_json=False)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) <= 40
    signature = next(line for line in lines if line.startswith("signature:"))
    assert '5081 "WWW WinNT cmd.exe Access"' in signature and str(ETHERNET) in signature
    matched = next(line for line in lines if line.startswith("matched:"))
    context = sensor.trigger_context(ETHERNET)
    assert context and matched.startswith("matched:  " + context[:20].decode("ascii"))
    assert all(char.isprintable() for char in run.out.replace("\n", ""))


def test_without_context_the_matched_bytes_are_the_payloads_start(sensor, tmp_path):
    run = cisco(sensor, tmp_path, RAW_IP)
    assert run.code == 0, run.err
    assert sensor.trigger_context(RAW_IP) is None
    assert run.report["about"]["matched"].startswith("GET ")


def test_a_raw_ip_dump_is_a_raw_ip_packet(sensor, tmp_path):
    run = cisco(sensor, tmp_path, RAW_IP)
    linktype, packets = records(run.report["pcap"])
    assert linktype == LINKTYPE_RAW
    assert packets == [(alert_ns(), len(sensor.trigger_dump(RAW_IP)),
                        sensor.trigger_dump(RAW_IP))]
    assert sensor.trigger_dump(RAW_IP) == sensor.trigger_frame(RAW_IP)[14:]


def test_a_cut_dump_keeps_its_length_on_the_wire(sensor, tmp_path):
    run = cisco(sensor, tmp_path, TRUNCATED)
    assert run.code == 0, run.err
    (_, origlen, data), = records(run.report["pcap"])[1]
    assert data == sensor.trigger_dump(TRUNCATED) and len(data) == 64
    assert origlen == len(sensor.trigger_frame(TRUNCATED)) > 64


def test_a_dump_that_is_not_base64_is_a_warning_and_the_outcome_stays(sensor, tmp_path):
    run = cisco(sensor, tmp_path, NOT_BASE64)
    assert run.code == 3, run.err
    assert run.report["status"] == "no-data" and "has no IP log" in run.report["reason"]
    assert f"alert {NOT_BASE64}'s trigger packet was left out: it is not base64" in \
        run.report["warnings"]


def test_with_an_ip_log_the_capture_is_the_ip_log_alone(sensor, tmp_path):
    run = cisco(sensor, tmp_path, WITH_LOG)
    assert run.code == 0, run.err
    assert run.report["reason"] == "1 IP log merged"
    packets = read_packets(run.report["pcap"])
    assert sorted(packets) == sorted(read_packets(sensor.capture_path(901)))
    frames = [data for _, data in packets]
    assert frames.count(sensor.trigger_frame(WITH_LOG)) == 1      # never added twice


def test_an_ip_log_that_never_completes_leaves_the_trigger_packet(sensor, tmp_path):
    sensor.set_faults(Fault("never-completes", sessions={"901"}))
    run = cisco(sensor, tmp_path, WITH_LOG, "--wait", "1")
    assert run.code == 0, run.err
    report = run.report
    assert report["reason"] == "the alert's trigger packet alone"
    assert report["warnings"][0].startswith("only the alert's trigger packet was available: "
                                            "IP log 901")
    assert report["errors"] == [] and report["sessions"]["failed"] == 1
    assert report["final"] is False               # a later run asks for the IP log again
    assert [data for _, data in read_packets(report["pcap"])] == \
        [sensor.trigger_frame(WITH_LOG)]
    sensor.clear_faults()
    again = cisco(sensor, tmp_path, WITH_LOG)
    assert again.code == 0 and again.report["reason"] == "1 IP log merged", again.err
    frames = [data for _, data in read_packets(again.report["pcap"])]
    assert frames.count(sensor.trigger_frame(WITH_LOG)) == 1


def test_trigger_only_asks_for_no_ip_log(sensor, tmp_path):
    run = cisco(sensor, tmp_path, WITH_LOG, "--trigger-only")
    assert run.code == 0, run.err
    assert iplog_posts(run) == []
    assert run.report["warnings"][0] == ("only the alert's trigger packet was available: "
                                         "--trigger-only: the IP logs were not asked for")
    assert [data for _, data in read_packets(run.report["pcap"])] == \
        [sensor.trigger_frame(WITH_LOG)]


def test_trigger_only_without_a_trigger_packet_is_no_data(sensor, tmp_path):
    run = cisco(sensor, tmp_path, PLAIN, "--trigger-only")
    assert run.code == 3
    assert "carries no trigger packet" in run.report["reason"]
    assert iplog_posts(run) == []


def test_trigger_only_needs_an_alert(sensor, tmp_path):
    run = run_against(sensor, "cisco", "--address", sensor.url, "--username", "sdee-viewer",
                      "--password", PASSWORD, "--iplog-id", "901", "--trigger-only",
                      "--pcap-dir", str(tmp_path), as_json=False)
    assert run.code == 2
    assert "--trigger-only needs --event-id" in one_error_line(run.err)
    assert run.requests == []


def test_a_preview_of_a_verbose_alert_without_ip_log_takes_the_trigger(sensor, tmp_path):
    run = cisco(sensor, tmp_path, ETHERNET, "--preview", as_json=False)
    assert run.code == 0, run.err
    assert run.out.startswith("srp-pcap cisco: PREVIEW: would take the alert's trigger "
                              "packet alone")
    assert iplog_posts(run) == []
