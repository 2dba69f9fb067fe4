"""`srp-pcap cisco` end to end: the real command line (python -m srp, a subprocess) against
the Cisco IPS simulator over real HTTPS on loopback, and the packet-header decoding its
--only-participants filter stands on.

What the issue asks of it: an alert's IP logs by event id (SDEE query mode, subscription
mode, the 4.x route, both cidee namespaces) or one IP log by its id; waiting for a log to
complete, and a clear error naming a log that never does; several logs merged; only the
attacker/target packets on request; every fault with its documented outcome, no traceback
and nothing half-written; an external entity never expanded; the password never shown;
ids checked before any request; --json; reuse; --ca-bundle winning over the environment.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import (
    CA_BUNDLE_ENVIRONMENT,
    Run,
    assert_nothing_half_written,
    assert_result_intact,
    assert_secret_nowhere,
    one_error_line,
    options_given,
    read_packets,
    run_against,
)

from srp.simulators.cisco import AlertSpec, CiscoSimulator
from srp.simulators.faults import Fault

USER = "sdee-viewer"
PASSWORD = "Sdee-pw-3f9a1c77"

RECENT = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
OLD = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
ONE_LOG, TWO_LOGS, IPV6, NO_LOG, OLD_ALERT = 5001, 5002, 5003, 5004, 5005
ALERTS = [
    AlertSpec(ONE_LOG, RECENT - dt.timedelta(minutes=50), (101,)),
    AlertSpec(TWO_LOGS, RECENT - dt.timedelta(minutes=40), (201, 202),
              attacker="203.0.113.66", attacker_port=40001, target="10.1.0.30",
              target_port=8080),
    AlertSpec(IPV6, RECENT - dt.timedelta(minutes=30), (301,), attacker="2001:db8:66::7",
              attacker_port=50100, target="2001:db8:1::20", target_port=80),
    AlertSpec(NO_LOG, RECENT - dt.timedelta(minutes=20), ()),
    AlertSpec(OLD_ALERT, OLD, (501,)),
]


@pytest.fixture(scope="module")
def sensor():
    with CiscoSimulator(ALERTS, username=USER, password=PASSWORD) as simulator:
        yield simulator


class CiscoRun(Run):
    """A run seen from the sensor's two services."""

    @property
    def iplog_posts(self) -> list[int]:
        return [int(parse_qs(urlsplit(r.path).query)["ipLogId"][0]) for r in self.requests
                if r.method == "POST"]

    @property
    def sdee_requests(self) -> list[tuple[str, dict]]:
        return [(urlsplit(r.path).path, parse_qs(urlsplit(r.path).query))
                for r in self.requests if r.method == "GET"]


def cisco(simulator, pcap_dir, *extra, event_id=ONE_LOG, iplog_id=None, password=PASSWORD,
          alarm_id="7001", ca=True, as_json=True, env=None) -> CiscoRun:
    return run_against(simulator, "cisco", "--address", simulator.url, "--username", USER,
                       "--pcap-dir", pcap_dir,
                       *options_given(("--password", password), ("--event-id", event_id),
                                      ("--iplog-id", iplog_id), ("--alarm-id", alarm_id)),
                       *extra, ca=ca, as_json=as_json, env=env, run_type=CiscoRun)


def log_packets(simulator, *log_ids: int) -> list:
    return sorted(packet for log_id in log_ids
                  for packet in read_packets(simulator.capture_path(log_id)))


def pair_packets(log) -> int:
    """How many of an IP log's packets are the alert's attacker/target connection, from
    the traffic's plan (not from its bytes)."""
    alert = log.alert
    pair = {(alert.attacker, alert.attacker_port), (alert.target, alert.target_port)}
    return sum(1 for packet in log.pair.plan()
               if {(packet.src, packet.sport), (packet.dst, packet.dport)} == pair)


# --- by event id, by IP log id, several logs ---

def test_by_event_id_the_capture_is_the_alerts_ip_log(sensor, tmp_path):
    run = cisco(sensor, tmp_path)
    assert run.code == 0, run.err
    assert run.report["status"] == "ok"
    assert run.report["sessions"] == {"found": 1, "downloaded": 1, "failed": 0}
    assert run.iplog_posts == [101]
    assert sorted(read_packets(run.report["pcap"])) == log_packets(sensor, 101)
    manifest = assert_result_intact(run, tmp_path)
    assert manifest["request"]["event_id"] == ONE_LOG
    [entry] = manifest["sessions"]
    assert entry["ipLogId"] == 101 and entry["eventId"] == ONE_LOG
    assert entry["attacker"] == "198.51.100.23:49822" and entry["targets"] == ["10.1.0.20:80"]
    assert entry["ipLogStatus"] == "completed" and entry["status"] == "downloaded"
    assert Path(run.report["pcap"]).name.startswith("cisco_7001_")
    assert "Cookie" in run.requests[-1].headers   # the sensor's session cookie came back
    assert_secret_nowhere(PASSWORD, run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_by_ip_log_id_no_alert_is_looked_up(sensor, tmp_path):
    run = cisco(sensor, tmp_path, event_id=None, iplog_id=202)
    assert run.code == 0, run.err
    assert run.sdee_requests == [] and run.iplog_posts == [202]
    assert sorted(read_packets(run.report["pcap"])) == log_packets(sensor, 202)


def test_several_ip_logs_are_merged(sensor, tmp_path):
    run = cisco(sensor, tmp_path, event_id=TWO_LOGS)
    assert run.code == 0, run.err
    assert run.report["sessions"] == {"found": 2, "downloaded": 2, "failed": 0}
    packets = read_packets(run.report["pcap"])
    assert sorted(packets) == log_packets(sensor, 201, 202)
    assert [ts for ts, _ in packets] == sorted(ts for ts, _ in packets)


# --- the ways a sensor serves its events ---

@pytest.mark.parametrize("sensor_kind, mode, route", [
    ({}, "query", "/cgi-bin/sdee-server"),
    ({"subscription_only": True}, "subscription", "/cgi-bin/sdee-server"),
    ({"legacy": True}, "query", "/cgi-bin/event-server"),
    ({"cidee_namespace": "2004"}, "query", "/cgi-bin/sdee-server"),
    ({"legacy": True, "subscription_only": True, "cidee_namespace": "2004"}, "subscription",
     "/cgi-bin/event-server"),
])
def test_every_way_a_sensor_serves_events(tmp_path, sensor_kind, mode, route):
    # Three events an answer: the client pages to the alert.
    with CiscoSimulator(ALERTS, username=USER, password=PASSWORD, max_events=3,
                        **sensor_kind) as simulator:
        run = cisco(simulator, tmp_path, event_id=TWO_LOGS)
        assert run.code == 0, run.err
        assert sorted(run.iplog_posts) == [201, 202]
        routes = [path for path, _ in run.sdee_requests]
        if sensor_kind.get("legacy"):
            assert routes[0] == "/cgi-bin/sdee-server" and set(routes[1:]) == {route}
        else:
            assert set(routes) == {route}
        actions = [params.get("action", ["query"])[0] for _, params in run.sdee_requests]
        if mode == "subscription":
            assert actions[-1] == "close" and actions.count("get") >= 2
            assert simulator.subscriptions == {} and simulator.closed_subscriptions == 1
            # An automatic action never closes someone else's subscription to open its own.
            assert all(params.get("force") == ["no"] for _, params in run.sdee_requests
                       if params.get("action") == ["open"])
        else:
            assert actions.count("query") >= 2
        manifest = assert_result_intact(run, tmp_path)
        assert manifest["sessions"][0]["foundThrough"] == f"SDEE {mode} mode at {route}"


def test_an_alert_not_found_in_a_subscription_still_closes_it(tmp_path):
    with CiscoSimulator(ALERTS, username=USER, password=PASSWORD,
                        subscription_only=True) as simulator:
        run = cisco(simulator, tmp_path, event_id=999)
        assert run.code == 3, run.err
        assert simulator.subscriptions == {} and simulator.closed_subscriptions == 1


# --- waiting for IP logs ---

def test_the_run_waits_for_an_ip_log_to_complete(tmp_path):
    with CiscoSimulator(ALERTS, username=USER, password=PASSWORD,
                        complete_after=1.5) as simulator:
        run = cisco(simulator, tmp_path)
        assert run.code == 0, run.err
        assert run.seconds >= 1.5
        posts = [r for r in run.requests if r.method == "POST"]
        assert len(posts) >= 2 and posts[-1].status == 200
        assert sorted(read_packets(run.report["pcap"])) == log_packets(simulator, 101)
        [entry] = assert_result_intact(run, tmp_path)["sessions"]
        assert entry["waitedSeconds"] >= 1.5


def test_a_log_that_never_completes_is_an_error_naming_it(sensor, tmp_path):
    sensor.set_faults("never-completes")
    run = cisco(sensor, tmp_path, "--wait", "2")
    assert run.code == 1, run.err
    assert run.report["status"] == "error" and run.report["pcap"] is None
    [error] = run.report["errors"]
    assert "IP log 101" in error and "--wait 2" in error
    assert "is not available: it is still being written" in error   # the sensor's words
    assert "<" not in error
    assert len(run.iplog_posts) >= 2 and 2 <= run.seconds < 20
    assert_nothing_half_written(tmp_path)


def test_one_of_two_logs_never_completing_makes_a_partial_result(sensor, tmp_path):
    sensor.set_faults(Fault("never-completes", sessions={"202"}))
    run = cisco(sensor, tmp_path, "--wait", "1", event_id=TWO_LOGS)
    assert run.code == 4, run.err
    assert run.report["sessions"] == {"found": 2, "downloaded": 1, "failed": 1}
    [error] = run.report["errors"]
    assert "IP log 202" in error
    assert sorted(read_packets(run.report["pcap"])) == log_packets(sensor, 201)
    manifest = assert_result_intact(run, tmp_path)
    assert {e["ipLogId"]: e["status"] for e in manifest["sessions"]} == {201: "downloaded",
                                                                         202: "failed"}
    assert_nothing_half_written(tmp_path)


# --- --only-participants ---

@pytest.mark.parametrize("event_id, log_id", [(ONE_LOG, 101), (IPV6, 301)])
def test_only_participants_keeps_the_attacker_target_packets(sensor, tmp_path, event_id,
                                                            log_id):
    from scapy.layers.l2 import Ether

    run = cisco(sensor, tmp_path, "--only-participants", event_id=event_id)
    assert run.code == 0, run.err
    log = sensor.ip_logs[log_id]
    packets = read_packets(run.report["pcap"])
    assert 0 < len(packets) == pair_packets(log) < len(log_packets(sensor, log_id))
    alert = log.alert
    pair = {(alert.attacker, alert.attacker_port), (alert.target, alert.target_port)}
    for _, frame in packets:   # read by scapy, not by the filter's own decoder
        ip = Ether(frame).payload
        assert {(ip.src, ip.payload.sport), (ip.dst, ip.payload.dport)} == pair
    [entry] = assert_result_intact(run, tmp_path)["sessions"]
    assert entry["participantPackets"] == {"kept": len(packets),
                                           "of": len(log_packets(sensor, log_id))}
    # The manifest keeps the hash of the log as the sensor sent it.
    assert entry["sha256"] != run.report["sha256"]


def test_a_damaged_ip_log_is_filtered_up_to_its_damage_with_a_warning_naming_it(tmp_path):
    with CiscoSimulator(ALERTS, username=USER, password=PASSWORD) as simulator:
        log = simulator.capture_path(101)
        log.write_bytes(log.read_bytes()[:-10])   # the last record cut short
        run = cisco(simulator, tmp_path, "--only-participants")
        assert run.code == 0, run.err
        [warning] = run.report["warnings"]
        assert warning.startswith("IP log 101: truncated record") and ".srp-work" not in warning
        assert run.report["packets"] == pair_packets(simulator.ip_logs[101])


def test_only_participants_needs_an_event_id(sensor, tmp_path):
    run = cisco(sensor, tmp_path, "--only-participants", event_id=None, iplog_id=101)
    assert run.code == 2
    assert "--event-id" in one_error_line(run.err)
    assert run.requests == []


# --- faults: each ends in its documented outcome ---

@pytest.mark.parametrize("fault, options, words", [
    ("401", {}, "HTTP 401"),
    ("xml-error", {}, "errSystemError: sensorApp is not responding"),
    ("hostile-entity", {}, "DOCTYPE"),
    ("unknown-id", {"event_id": None, "iplog_id": 101}, "IP log 101 does not exist"),
    ("never-completes", {"event_id": None, "iplog_id": 101}, "still being written"),
])
def test_every_fault_ends_in_exit_1_with_the_sensors_words(sensor, tmp_path, fault, options,
                                                           words):
    sensor.set_faults(fault)
    run = cisco(sensor, tmp_path, "--wait", "1", **options)
    assert run.code == 1, run.err
    assert run.report["status"] == "error" and run.report["pcap"] is None
    assert words in run.err + json.dumps(run.report)
    assert "Traceback" not in run.err
    assert_secret_nowhere(PASSWORD, run, tmp_path)
    assert_nothing_half_written(tmp_path)
    if fault in ("401", "xml-error", "hostile-entity"):   # the alert could not be looked up
        assert "IP log" not in one_error_line(run.err) and run.iplog_posts == []
    if fault == "unknown-id":   # the sensor says the log does not exist: no waiting
        assert run.iplog_posts == [101]


def test_an_external_entity_is_never_expanded(sensor, tmp_path):
    sensor.set_faults("hostile-entity")
    run = cisco(sensor, tmp_path)
    assert run.code == 1
    line = one_error_line(run.err)
    assert "refused" in line and "DOCTYPE" in line
    assert sensor.canary_hits == []   # neither the entity nor the external DTD was fetched
    everything = run.out + run.err + "".join(p.read_text(errors="replace")
                                             for p in tmp_path.rglob("*") if p.is_file())
    assert "root:" not in everything and Path("/etc/passwd").read_text()[:20] not in everything


@pytest.mark.parametrize("as_json", [True, False])
def test_a_wrong_password_is_never_echoed(sensor, tmp_path, as_json):
    wrong = "Wrong-pw-77aa19"
    run = cisco(sensor, tmp_path, password=wrong, as_json=as_json)
    assert run.code == 1
    assert "401" in one_error_line(run.err)
    assert_secret_nowhere(wrong, run, tmp_path)


def test_the_password_from_the_environment(sensor, tmp_path):
    run = cisco(sensor, tmp_path, password=None, env={"SRP_CISCO_PASSWORD": PASSWORD})
    assert run.code == 0, run.err
    assert_secret_nowhere(PASSWORD, run, tmp_path)


# --- usage: ids are whole numbers, checked before any request ---

@pytest.mark.parametrize("option, value", [
    ("event_id", "12a"), ("event_id", "-5"), ("event_id", "1e3"), ("event_id", ""),
    ("iplog_id", "0x10"), ("iplog_id", "1 2"), ("iplog_id", "../1"),
])
def test_ids_that_are_not_whole_numbers_are_usage_errors(sensor, tmp_path, option, value):
    ids = {"event_id": None, "iplog_id": None, option: value}
    run = cisco(sensor, tmp_path, **ids)
    assert run.code == 2, run.err
    assert "whole number" in one_error_line(run.err)
    assert run.report["status"] == "error" and run.report["errors"]
    assert run.requests == []


@pytest.mark.parametrize("ids", [{"event_id": None}, {"iplog_id": 101}])
def test_exactly_one_of_event_id_and_iplog_id(sensor, tmp_path, ids):
    run = cisco(sensor, tmp_path, **ids)
    assert run.code == 2, run.err
    assert "--event-id" in one_error_line(run.err) and run.requests == []


# --- no data, the alarm date, the text summary ---

@pytest.mark.parametrize("event_id, reason", [
    (NO_LOG, f"alert {NO_LOG} (WWW WinNT cmd.exe Access) has no IP log"),
    (999, "no alert with event id 999 on the sensor since"),
    (OLD_ALERT, f"no alert with event id {OLD_ALERT}"),   # older than the last 24 hours
])
def test_no_data_in_the_sensors_terms(sensor, tmp_path, event_id, reason):
    run = cisco(sensor, tmp_path, event_id=event_id)
    assert run.code == 3, run.err
    assert run.report["status"] == "no-data" and reason in run.report["reason"]
    assert run.iplog_posts == []
    assert_nothing_half_written(tmp_path)


def test_an_older_alert_is_found_from_the_alarm_date(sensor, tmp_path):
    run = cisco(sensor, tmp_path, "--alarm-date", "05/01/2024 12:30:00", event_id=OLD_ALERT,
                as_json=False)
    assert run.code == 0, run.err
    assert run.out.startswith("srp-pcap cisco: OK: 1 IP log merged")
    start = run.sdee_requests[0][1]["startTime"][0]
    assert int(start) == int((OLD + dt.timedelta(minutes=30, hours=-24)).timestamp()) * 10**9


# --- reuse, TLS ---

def test_the_same_alarm_reuses_its_result_and_force_refetches(sensor, tmp_path):
    first = cisco(sensor, tmp_path)
    assert first.code == 0 and first.report["reused"] is False
    again = cisco(sensor, tmp_path)
    assert again.code == 0 and again.report["reused"] is True
    assert again.requests == [] and again.report["pcap"] == first.report["pcap"]
    forced = cisco(sensor, tmp_path, "--force")
    assert forced.code == 0 and forced.iplog_posts == [101]
    assert_result_intact(forced, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_ca_bundle_wins_over_requests_and_curl_ca_bundle(sensor, tmp_path):
    run = cisco(sensor, tmp_path / "with", env=CA_BUNDLE_ENVIRONMENT)
    assert run.code == 0, run.err
    refused = cisco(sensor, tmp_path / "without", env=CA_BUNDLE_ENVIRONMENT, ca=False)
    assert refused.code == 1
    line = one_error_line(refused.err)
    assert "TLS" in line and "--ca-bundle" in line
    assert refused.requests == []


# --- the packet headers under --only-participants ---

def _frames():
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether
    from scapy.layers.sctp import SCTP

    tcp = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80)
    v6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / UDP(sport=53,
                                                                                dport=5353)
    return [
        (1, Ether() / tcp, ("10.0.0.1", "10.0.0.2", 6, 1234, 80)),
        (1, Ether() / Dot1Q(vlan=7) / Dot1Q(vlan=8) / tcp, ("10.0.0.1", "10.0.0.2", 6, 1234, 80)),
        (113, CookedLinux(proto=0x0800) / tcp, ("10.0.0.1", "10.0.0.2", 6, 1234, 80)),
        (276, CookedLinuxV2(proto=0x86DD) / v6, ("2001:db8::1", "2001:db8::2", 17, 53, 5353)),
        (101, v6, ("2001:db8::1", "2001:db8::2", 17, 53, 5353)),
        (101, IP(src="10.0.0.1", dst="10.0.0.2") / SCTP(sport=2905, dport=2906),
         ("10.0.0.1", "10.0.0.2", 132, 2905, 2906)),
        (101, IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(offset=10, nh=6) / (b"x" * 8),
         ("::1", "::2", 6, None, None)),                          # a later fragment: no ports
        (101, IP(src="10.0.0.1", dst="10.0.0.2", frag=100, proto=17) / (b"x" * 8),
         ("10.0.0.1", "10.0.0.2", 17, None, None)),
        (1, Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / b"\x08\x00", ("10.0.0.1",
                                                                           "10.0.0.2", 0,
                                                                           None, None)),
    ]


def test_headers_are_decoded_on_every_supported_link_type():
    from srp.capture.headers import decode_packet, packed_address

    for linktype, frame, (src, dst, protocol, sport, dport) in _frames():
        packet = decode_packet(linktype, bytes(frame))
        assert (packet.src, packet.dst, packet.protocol, packet.sport, packet.dport) == (
            packed_address(src), packed_address(dst), protocol, sport, dport), frame.summary()


@pytest.mark.parametrize("linktype, frame", [
    (1, b"\x00" * 12 + b"\x08\x00" + b"\x45\x00"),   # IPv4 cut inside its header
    (1, b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28),  # ARP
    (101, b""), (113, b"\x00" * 10), (147, b"\x45" + b"\x00" * 40),   # unknown link type
])
def test_frames_without_a_whole_ip_header_decode_to_none(linktype, frame):
    from srp.capture.headers import decode_packet

    assert decode_packet(linktype, frame) is None


def test_the_filter_streams_pcapng_keeping_its_interfaces(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter

    from srp.capture.filter import filter_capture

    source, target = tmp_path / "in.pcapng", tmp_path / "out.pcapng"
    packets = [Ether() / IP(src=f"10.0.0.{i % 3}", dst="10.0.0.9") / TCP() for i in range(30)]
    with PcapNgWriter(str(source)) as writer:
        for number, packet in enumerate(packets):
            packet.time = 1_700_000_000 + number
            writer.write(packet)
    result = filter_capture(source, target, lambda packet: packet.src == bytes([10, 0, 0, 1]))
    assert (result.kept, result.read, result.damage) == (10, 30, None)
    kept = read_packets(target)
    assert target.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    assert [data for _, data in kept] == [bytes(p) for p in packets[1::3]]
    assert [ts for ts, _ in kept] == [(1_700_000_000 + n) * 10**9 for n in range(1, 30, 3)]


# --- sensor documents the simulator does not send ---

SOAP_ENVELOPE = ('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
                 'xmlns:sd="http://example.org/2003/08/sdee">{}</env:Envelope>')


@pytest.mark.parametrize("body, name, words", [
    ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
     "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>busy</faultstring>"
     "</soap:Fault></soap:Body></soap:Envelope>", "", "busy"),
    (SOAP_ENVELOPE.format('<env:Body><env:Fault><env:Detail><sd:errMessage name="errNotFound">'
                          "no such subscription</sd:errMessage></env:Detail></env:Fault>"
                          "</env:Body>"), "errNotFound", "no such subscription"),
    (SOAP_ENVELOPE.format("<env:Body><env:Fault><env:Reason><env:Text>too\n many\t"
                          "</env:Text></env:Reason><env:Detail><sd:errLimitExceeded/>"
                          "</env:Detail></env:Fault></env:Body>"), "errLimitExceeded",
     "too many"),
])
def test_error_documents_in_their_several_shapes(body, name, words):
    from srp.vendors.cisco_sdee import SensorSaid, parse_document

    with pytest.raises(SensorSaid) as said:
        parse_document(body.encode(), "SDEE event query")
    assert (said.value.name, said.value.words) == (name, words)


def test_a_doctype_is_refused_whatever_the_encoding():
    from srp.errors import SrpError
    from srp.vendors.cisco_sdee import parse_document

    hostile = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e SYSTEM '
               '"file:///etc/passwd">]><x>&e;</x>').encode("utf-16")
    with pytest.raises(SrpError, match="refused .* DOCTYPE"):
        parse_document(hostile, "SDEE event query")


@pytest.mark.parametrize("page, complaint", [
    (b"<html><head><title>IDM - Login</title></head><body><p>Sign in</body></html>",
     "not an XML document"),
    (b"<html><head><title>IDM - Login</title></head><body><p>Sign in</p></body></html>",
     "not an SDEE document"),   # well-formed: still never read as "no events"
])
def test_an_html_page_instead_of_sdee_is_quoted(page, complaint):
    from srp.errors import SrpError
    from srp.vendors.cisco_sdee import parse_document

    with pytest.raises(SrpError, match=f"{complaint}: IDM - Login$"):
        parse_document(page, "SDEE event query")
