"""The Cisco IPS simulator over real HTTPS on loopback: Basic auth and the session cookie,
SDEE query and subscription modes, the 4.x route, both cidee namespaces, IP logs that
complete some time after they are first asked for, verbose alerts and their trigger packet,
every fault, and `simulate cisco` run as a user runs it.

Documents are read here with lxml's plain XPath, independently of srp.vendors.cisco_sdee.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time

import pytest
import requests
from click.testing import CliRunner
from conftest import NOW, read_packets, simulator_serving
from lxml import etree

from srp.simulators.cisco import (
    FAULTS,
    IPLOG_ROUTE,
    LEGACY_SDEE_ROUTE,
    SDEE_ROUTE,
    AlertSpec,
    CiscoSimulator,
    default_alerts,
)
from srp.simulators.cli import simulate
from srp.simulators.faults import Fault
from srp.simulators.https import MASK

PASSWORD = "sim-pw-8c1d"
SD = "http://example.org/2003/08/sdee"
CID_2006 = "http://www.cisco.com/cids/2006/08/cidee"
CID_2004 = "http://www.cisco.com/cids/2004/04/cidee"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
PCAP_MAGIC = bytes.fromhex("d4c3b2a1")


@pytest.fixture(scope="module")
def sensor():
    with CiscoSimulator(default_alerts(NOW), password=PASSWORD, max_events=4) as simulator:
        yield simulator


def sdee(simulator, route=None, auth=None, **params) -> requests.Response:
    return requests.get(simulator.url + (route or SDEE_ROUTE), params=params, timeout=20,
                        auth=auth or (simulator.username, simulator.password),
                        verify=str(simulator.ca_bundle))


def iplog(simulator, log_id, method="POST", auth=None) -> requests.Response:
    return requests.request(method, simulator.url + IPLOG_ROUTE, params={"ipLogId": log_id},
                            auth=auth or (simulator.username, simulator.password), timeout=20,
                            verify=str(simulator.ca_bundle))


def parse(answer: requests.Response):
    assert answer.status_code == 200, answer.text
    return etree.fromstring(answer.content, etree.XMLParser(resolve_entities=False,
                                                            no_network=True))


def event_ids(root) -> list[tuple[str, str]]:
    """(kind, eventId) of every event, in document order."""
    names = {f"{{{SD}}}evIdsAlert": "alert", f"{{{SD}}}evStatus": "status"}
    return [(names[element.tag], element.get("eventId"))
            for element in root.iterfind(f"{{{SOAP}}}Body/{{{SD}}}events/*")]


def fault_name(root) -> str:
    detail = root.find(f".//{{{SOAP}}}Detail")
    return etree.QName(detail[0]).localname


def all_query_events(simulator, **params) -> list:
    """Every event a query finds, paging on the last event's time."""
    events, start = [], 0
    while True:
        root = parse(sdee(simulator, events="evIdsAlert evStatus", startTime=start, **params))
        seen = {event.get("eventId") for event in events}
        page = [e for e in root.iterfind(f".//{{{SD}}}events/*") if e.get("eventId") not in seen]
        if not page:
            return events
        events += page
        start = max(int(e.findtext(f"{{{SD}}}time")) for e in page)


# --- authentication and the cookie ---

@pytest.mark.parametrize("auth", [("sdee-viewer", "wrong"), ("someone", PASSWORD), ("", "")])
def test_wrong_credentials_get_401_with_a_basic_challenge(sensor, auth):
    for answer in (sdee(sensor, auth=auth), iplog(sensor, 1734556221, auth=auth)):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
        assert PASSWORD not in answer.text


def test_no_credentials_at_all_get_401(sensor):
    answer = requests.get(sensor.url + SDEE_ROUTE, verify=str(sensor.ca_bundle), timeout=20)
    assert answer.status_code == 401


def test_the_session_cookie_is_set_once_and_the_log_masks_credentials(sensor):
    with requests.Session() as session:
        session.auth = (sensor.username, sensor.password)
        first = session.get(sensor.url + SDEE_ROUTE, verify=str(sensor.ca_bundle), timeout=20)
        again = session.get(sensor.url + SDEE_ROUTE, verify=str(sensor.ca_bundle), timeout=20)
    assert "Set-Cookie" in first.headers and "Set-Cookie" not in again.headers
    logged = sensor.requests[-2:]
    assert logged[0].headers["Authorization"] == MASK
    assert logged[1].headers["Cookie"] == MASK
    assert all(PASSWORD not in str(entry.headers) + entry.path for entry in sensor.requests)


# --- SDEE query mode ---

def test_query_mode_pages_through_every_event_in_time_order(sensor):
    events = all_query_events(sensor)
    alerts = [e for e in events if e.tag == f"{{{SD}}}evIdsAlert"]
    assert [int(a.get("eventId")) for a in alerts] == [a.event_id for a in sensor.alerts]
    # Every IP log: added and started with its alert, completed (complete_after is 0).
    statuses = [e for e in events if e.tag == f"{{{SD}}}evStatus"]
    assert len(statuses) == 3 * len(sensor.ip_logs)
    times = [int(e.findtext(f"{{{SD}}}time")) for e in events]
    assert times == sorted(times)


def test_an_answer_holds_at_most_max_events(sensor):
    root = parse(sdee(sensor, events="evIdsAlert evStatus", startTime=0, maxNbrOfEvents=100))
    assert len(event_ids(root)) == 4


def test_query_filters_on_start_time_and_event_kind(sensor):
    third = sensor.alerts[2]
    root = parse(sdee(sensor, events="evIdsAlert", startTime=third.time_ns))
    assert event_ids(root) == [("alert", str(a.event_id)) for a in sensor.alerts[2:]]


def test_an_alert_carries_its_participants_and_ip_log_ids(sensor):
    alert = sensor.alerts[1]
    root = parse(sdee(sensor, events="evIdsAlert", startTime=alert.time_ns, maxNbrOfEvents=1))
    element = root.find(f".//{{{SD}}}evIdsAlert")
    assert element.get("eventId") == str(alert.event_id)
    assert element.findtext(f"{{{SD}}}time") == str(alert.time_ns)
    assert element.find(f"{{{SD}}}signature").get("id") == str(alert.signature_id)
    attacker = element.find(f"{{{SD}}}participants/{{{SD}}}attacker")
    assert attacker.findtext(f"{{{SD}}}addr") == alert.attacker
    assert attacker.findtext(f"{{{SD}}}port") == str(alert.attacker_port)
    logs = element.findall(f"{{{CID_2006}}}ipLogIds/{{{CID_2006}}}ipLogId")
    assert [int(log.text) for log in logs] == list(alert.ip_log_ids)


def test_the_2004_namespace_for_older_sensors():
    with CiscoSimulator(default_alerts(NOW), cidee_namespace="2004") as simulator:
        root = parse(sdee(simulator, events="evIdsAlert evStatus", startTime=0))
        assert root.find(f".//{{{CID_2004}}}ipLogId") is not None
        assert root.find(f".//{{{CID_2006}}}ipLogId") is None


def test_a_bad_start_time_is_an_error_document(sensor):
    root = parse(sdee(sensor, startTime="yesterday"))
    assert fault_name(root) == "errInvalidQuery"


# --- SDEE subscription mode, and the two sensors that need it or another route ---

def test_subscription_open_get_close(sensor):
    opened = parse(sdee(sensor, action="open", events="evIdsAlert", startTime=0))
    subscription = opened.findtext(f".//{{{SD}}}subscriptionId")
    assert opened.findtext(f".//{{{SD}}}sessionId")
    assert subscription in sensor.subscriptions
    seen = []
    while page := event_ids(parse(sdee(sensor, action="get", subscriptionId=subscription,
                                       maxNbrOfEvents=3))):
        assert len(page) <= 3
        seen += page
    assert seen == [("alert", str(a.event_id)) for a in sensor.alerts]
    parse(sdee(sensor, action="close", subscriptionId=subscription))
    assert subscription not in sensor.subscriptions
    gone = parse(sdee(sensor, action="get", subscriptionId=subscription))
    assert fault_name(gone) == "errNotFound"


def test_subscriptions_are_limited_unless_forced():
    with CiscoSimulator(default_alerts(NOW), max_subscriptions=1) as simulator:
        parse(sdee(simulator, action="open"))
        assert fault_name(parse(sdee(simulator, action="open"))) == "errLimitExceeded"
        parse(sdee(simulator, action="open", force="yes"))


def test_a_subscription_only_sensor_refuses_query_mode_with_status_200():
    with CiscoSimulator(default_alerts(NOW), subscription_only=True) as simulator:
        refused = sdee(simulator, events="evIdsAlert")
        assert refused.status_code == 200
        root = parse(refused)
        assert fault_name(root) == "errNotSupported"
        assert "subscription" in root.findtext(f".//{{{SOAP}}}Text")
        assert event_ids(parse(sdee(simulator, action="open", startTime=0))) == []


def test_a_legacy_sensor_serves_sdee_at_the_event_server_only(sensor):
    with CiscoSimulator(default_alerts(NOW), legacy=True) as simulator:
        assert sdee(simulator).status_code == 404
        assert event_ids(parse(sdee(simulator, route=LEGACY_SDEE_ROUTE, startTime=0)))
    assert sdee(sensor, route=LEGACY_SDEE_ROUTE).status_code == 404


# --- the IP log server ---

def test_an_ip_log_holds_the_pair_and_unrelated_traffic(sensor):
    log = sensor.ip_logs[1734556221]
    answer = iplog(sensor, log.log_id)
    assert answer.status_code == 200 and answer.content.startswith(PCAP_MAGIC)
    packets = read_packets(sensor.capture_path(log))
    assert answer.content == sensor.capture_path(log).read_bytes()
    assert len(packets) == log.pair.summary().packets + log.unrelated.summary().packets
    assert [ts for ts, _ in packets] == sorted(ts for ts, _ in packets)


def test_the_ip_log_server_takes_post_only(sensor):
    assert iplog(sensor, 1734556221, method="GET").status_code == 405


@pytest.mark.parametrize("log_id", ["99", "abc", ""])
def test_an_unknown_ip_log_is_an_error_message_with_status_200(sensor, log_id):
    answer = iplog(sensor, log_id)
    assert answer.status_code == 200
    root = parse(answer)
    assert root.tag == f"{{{SD}}}errMessage" and root.get("name") == "errNotFound"


def test_an_ip_log_completes_some_time_after_it_is_first_asked_for():
    alert = AlertSpec(1, NOW - dt.timedelta(minutes=5), (77,))
    with CiscoSimulator([alert], complete_after=0.6) as simulator:
        def completed() -> bool:
            root = parse(sdee(simulator, events="evStatus", startTime=0))
            return root.find(f".//{{{CID_2006}}}ipLogCompleted") is not None

        assert not completed()
        first = parse(iplog(simulator, 77))   # not a capture: an error message
        assert first.get("name") == "errNotAvailable" and "77" in first.text
        assert not completed()
        time.sleep(0.7)
        assert iplog(simulator, 77).content.startswith(PCAP_MAGIC)
        assert completed()


# --- verbose alerts: the trigger packet and the attacker's bytes in the alert ---

VERBOSE_START = NOW - dt.timedelta(minutes=30)
# One verbose alert per dump variant, each with its IP log; an IPv6 one; one with no IP log;
# one without cid:context; and a plain alert. Alert i fires i minutes after VERBOSE_START.
VERBOSE = {"ethernet": {}, "raw-ip": {"trigger_dump": "raw-ip"},
           "truncated": {"trigger_dump": "truncated"},
           "not-base64": {"trigger_dump": "not-base64"},
           "ipv6": {"trigger_dump": "raw-ip", "attacker": "2001:db8:66::9",
                    "target": "2001:db8:1::21"},
           "no-log": {"ip_log_ids": ()}, "no-context": {"context": False},
           "plain": {"verbose": False}}


def verbose_alert(name: str) -> AlertSpec:
    index = list(VERBOSE).index(name)
    fields = {"ip_log_ids": (9100 + index,), "verbose": True, **VERBOSE[name]}
    return AlertSpec(100 + index, VERBOSE_START + dt.timedelta(minutes=index), **fields)


@pytest.fixture(scope="module", params=["2006", "2004"])
def verbose_sensor(request):
    """A sensor of verbose alerts, in each cidee namespace: (simulator, its cid namespace)."""
    alerts = [verbose_alert(name) for name in VERBOSE]
    with CiscoSimulator(alerts, cidee_namespace=request.param) as simulator:
        yield simulator, {"2006": CID_2006, "2004": CID_2004}[request.param]


def served_alert(simulator, alert):
    """The alert's sd:evIdsAlert as the sensor serves it over HTTPS."""
    root = parse(sdee(simulator, events="evIdsAlert", startTime=alert.time_ns, maxNbrOfEvents=1))
    element = root.find(f".//{{{SD}}}evIdsAlert")
    assert element.get("eventId") == str(alert.event_id)
    return element


def strict_base64(text: str) -> bytes:
    """The element text as a client must read it: whitespace dropped, nothing else forgiven."""
    return base64.b64decode("".join(text.split()), validate=True)


def served_log(simulator, log_id, tmp_path) -> list[bytes]:
    """The frames of an IP log, downloaded from iplog-server."""
    path = tmp_path / f"{log_id}.pcap"
    path.write_bytes(iplog(simulator, log_id).content)
    return [frame for _, frame in read_packets(path)]


def request_segments(frames: list[bytes], alert) -> list[bytes]:
    """The frames from the alert's attacker to its target, on its ports, that carry payload."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether

    segments = []
    for frame in frames:
        packet = Ether(frame)
        if (TCP in packet and packet.payload.src == alert.attacker
                and packet.payload.dst == alert.target and len(packet[TCP].payload)
                and (packet[TCP].sport, packet[TCP].dport) == (alert.attacker_port,
                                                               alert.target_port)):
            segments.append(frame)
    return segments


@pytest.mark.parametrize("name", ["ethernet", "raw-ip", "truncated", "ipv6"])
def test_a_verbose_alert_carries_its_trigger_packet_in_base64_lines(verbose_sensor, name):
    simulator, cid = verbose_sensor
    alert = verbose_alert(name)
    element = served_alert(simulator, alert)
    text = element.findtext(f"{{{cid}}}triggerPacket")
    other = CID_2004 if cid == CID_2006 else CID_2006
    assert element.find(f"{{{other}}}triggerPacket") is None
    assert "\n" in text.strip() and max(map(len, text.splitlines())) <= 76
    frame = simulator.trigger_frame(alert.event_id)
    expected = {"ethernet": frame, "raw-ip": frame[14:], "truncated": frame[:64],
                "ipv6": frame[14:]}[name]
    assert strict_base64(text) == expected == simulator.trigger_dump(alert.event_id)
    if name == "truncated":
        assert len(frame) > 64
    elif name != "ethernet":   # the dump starts at the IP header: its version nibble
        assert expected[0] >> 4 == (6 if name == "ipv6" else 4)


def test_a_not_base64_dump_does_not_decode(verbose_sensor):
    simulator, cid = verbose_sensor
    alert = verbose_alert("not-base64")
    text = served_alert(simulator, alert).findtext(f"{{{cid}}}triggerPacket")
    assert text
    for validate in (True, False):
        with pytest.raises(binascii.Error):
            base64.b64decode("".join(text.split()), validate=validate)
    with pytest.raises(ValueError, match="no dump"):
        simulator.trigger_dump(alert.event_id)
    assert simulator.trigger_frame(alert.event_id)   # the packet is there all the same


@pytest.mark.parametrize("name", ["ethernet", "truncated", "ipv6"])
def test_the_trigger_frame_is_the_first_request_segment_of_the_ip_log(verbose_sensor, name,
                                                                       tmp_path):
    simulator, _ = verbose_sensor
    alert = verbose_alert(name)
    frames = served_log(simulator, alert.ip_log_ids[0], tmp_path)
    trigger = simulator.trigger_frame(alert.event_id)
    assert frames.count(trigger) == 1
    assert request_segments(frames, alert)[0] == trigger


def test_with_no_ip_log_the_trigger_frame_is_still_the_alerts_request(verbose_sensor):
    simulator, cid = verbose_sensor
    alert = verbose_alert("no-log")
    element = served_alert(simulator, alert)
    assert element.find(f"{{{cid}}}ipLogIds") is None
    trigger = strict_base64(element.findtext(f"{{{cid}}}triggerPacket"))
    assert request_segments([trigger], alert) == [trigger]
    assert trigger.endswith(simulator.trigger_context(alert.event_id))
    with CiscoSimulator([alert]) as again:   # the same seeds: the same bytes
        assert again.trigger_frame(alert.event_id) == trigger


@pytest.mark.parametrize("name", ["ethernet", "not-base64", "no-log"])
def test_the_context_is_the_trigger_packets_tcp_payload(verbose_sensor, name):
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether

    simulator, cid = verbose_sensor
    alert = verbose_alert(name)
    text = served_alert(simulator, alert).findtext(f"{{{cid}}}context/{{{cid}}}fromAttacker")
    payload = bytes(Ether(simulator.trigger_frame(alert.event_id))[TCP].payload)
    assert payload.startswith(b"GET /") and payload.endswith(b"\r\n\r\n")
    assert strict_base64(text) == payload == simulator.trigger_context(alert.event_id)


def test_a_verbose_alert_may_leave_the_context_out(verbose_sensor):
    simulator, cid = verbose_sensor
    alert = verbose_alert("no-context")
    element = served_alert(simulator, alert)
    assert element.find(f"{{{cid}}}context") is None
    assert element.find(f"{{{cid}}}triggerPacket") is not None
    assert simulator.trigger_context(alert.event_id) is None


def test_an_alert_that_is_not_verbose_has_neither_element(verbose_sensor):
    simulator, _ = verbose_sensor
    alert = verbose_alert("plain")
    names = {etree.QName(e).localname for e in served_alert(simulator, alert).iter()}
    assert names.isdisjoint({"triggerPacket", "context", "fromAttacker"})
    assert "ipLogIds" in names
    assert simulator.trigger_context(alert.event_id) is None
    with pytest.raises(ValueError, match="no dump"):
        simulator.trigger_dump(alert.event_id)


def test_an_unknown_trigger_dump_is_refused():
    with pytest.raises(ValueError, match="trigger_dump is one of ethernet, raw-ip"):
        AlertSpec(1, NOW, verbose=True, trigger_dump="hex")


def test_the_default_alerts_end_with_a_verbose_one_without_ip_log(sensor):
    assert [alert.verbose for alert in sensor.alerts] == [False] * 4 + [True]
    alert = sensor.alerts[-1]
    assert alert.ip_log_ids == () and alert.trigger_dump == "ethernet" and alert.context
    element = served_alert(sensor, alert)
    trigger = strict_base64(element.findtext(f"{{{CID_2006}}}triggerPacket"))
    assert trigger == sensor.trigger_frame(alert.event_id)
    assert request_segments([trigger], alert) == [trigger]


# --- faults ---

def test_never_completes_and_unknown_id_can_be_limited_to_a_log(sensor):
    sensor.set_faults(Fault("never-completes", sessions={"1734556222"}),
                      Fault("unknown-id", sessions={"1734556223"}))
    assert parse(iplog(sensor, 1734556222)).get("name") == "errNotAvailable"
    assert parse(iplog(sensor, 1734556223)).get("name") == "errNotFound"
    assert iplog(sensor, 1734556221).content.startswith(PCAP_MAGIC)


def test_401_fault_refuses_the_right_credentials(sensor):
    sensor.set_faults(Fault("401", first=2))
    assert sdee(sensor).status_code == 401
    assert iplog(sensor, 1734556221).status_code == 401
    assert sdee(sensor).status_code == 200


def test_xml_error_is_an_error_document_with_status_200(sensor):
    sensor.set_faults("xml-error")
    answer = sdee(sensor, events="evIdsAlert")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/xml")
    assert fault_name(parse(answer)) == "errSystemError"


def test_hostile_entity_is_armed_against_a_parser_that_resolves_entities(sensor):
    sensor.set_faults("hostile-entity")
    body = sdee(sensor, events="evIdsAlert").content
    assert b'<!ENTITY passwd SYSTEM "file:///etc/passwd">' in body
    assert sensor.canary_url.startswith("http://127.0.0.1:")
    assert sensor.canary_url.encode() in body and b"&canary;" in body
    # Well-formed: a parser left to resolve entities reads the local file into the alert.
    naive = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=False)
    assert "root:" in etree.tostring(etree.fromstring(body, naive)).decode()
    # The canary records whatever reaches it (libxml2 builds with HTTP support would fetch
    # it for the parser above; this one may not).
    assert requests.get(sensor.canary_url + "/probe", timeout=10).status_code == 200
    assert sensor.canary_hits[-1].endswith("/probe")


# --- `simulate cisco` as a user runs it ---

def test_simulate_cisco_serves_until_ctrl_c(tmp_path):
    with simulator_serving("cisco", "--password", "cli-pw", "--cert-dir", str(tmp_path),
                           "--complete-after", "0") as served:
        assert (f"--address {served.url} --username sdee-viewer --password cli-pw "
                f"--ca-bundle {served.ca_bundle}") in served.printed
        answer = requests.get(served.url + SDEE_ROUTE, params={"startTime": 0}, timeout=10,
                              auth=("sdee-viewer", "cli-pw"), verify=served.ca_bundle)
        assert answer.status_code == 200 and b"evIdsAlert" in answer.content


def test_simulate_cisco_help_lists_every_fault():
    help_text = CliRunner().invoke(simulate, ["cisco", "--help"]).output
    assert all(name in help_text for name in FAULTS)
    refused = CliRunner().invoke(simulate, ["cisco", "--fault", "teapot"])
    assert refused.exit_code == 2 and "teapot" in refused.output
