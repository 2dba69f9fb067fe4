"""`srp-pcap stamus` end to end: the real command line (python -m srp, a subprocess) against
the Stamus simulator over real HTTPS on loopback.

What the issue asks of it: one flow, and a whole signature's flows merged into one capture;
both alerts_tail result shapes; paging to the end; the probe from the alert or --probe; every
fault ends in its documented outcome with no traceback and nothing half-written (a download
cut mid-body restarts at the upload); an `_id` with bad characters is never uploaded; ids
that are not integers never leave; the token is never shown; --json, reuse and --ca-bundle
over REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import datetime as dt
import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import (
    ALARM_DATE,
    CA_BUNDLE_ENVIRONMENT,
    NOW,
    Run,
    assert_nothing_half_written,
    assert_result_intact,
    assert_secret_nowhere,
    one_error_line,
    options_given,
    read_packets,
    run_against,
)

from srp.simulators.faults import Fault
from srp.simulators.stamus import (
    ALERTS_ROUTE,
    UPLOAD_ROUTE,
    AlertSpec,
    StamusHandler,
    StamusSimulator,
)

TOKEN = "0123456789abcdef0123456789abcdef01234567"

SIG = 2029743            # four stored flows (one alerted twice), one not stored
OTHER_SIG = 2013028
NOCAP_SIG = 2100001      # its one flow was not stored
BAD_ID_SIG = 2100002     # its stored flow's alert has an _id that is no file name
MIXED_SIG = 2100003      # one alert fine, one with a bad _id
NO_HOST_SIG = 2100004    # its alert names no probe
BIG_SIG = 2100005        # one flow of about 150 KB


def _alert(signature_id: int, flow_id: int, es_id: str, minutes_before: float,
           **fields) -> AlertSpec:
    return AlertSpec(signature_id=signature_id, flow_id=flow_id, es_id=es_id,
                     timestamp=NOW - dt.timedelta(minutes=minutes_before),
                     src_port=40000 + flow_id % 20000, **fields)


STORED_FLOWS = [1001, 1002, 1003, 1005]
CATALOGUE = [
    _alert(SIG, 1001, "esA1001", 50, host="probe-east"),
    _alert(SIG, 1002, "esA1002", 40, host="probe-west"),
    _alert(SIG, 1003, "esA1003", 30, host="probe-east"),
    _alert(SIG, 1003, "esA1003b", 29.5, host="probe-east"),    # the same flow again
    _alert(SIG, 1004, "esA1004", 20, captured=False),
    _alert(SIG, 1005, "esA1005", 10, host="probe-west"),
    _alert(SIG, 1006, "esA1006", 600),                         # ten hours before the alarm
    _alert(OTHER_SIG, 2001, "esB2001", 35),
    _alert(NOCAP_SIG, 3001, "esC3001", 25, captured=False),
    _alert(BAD_ID_SIG, 4001, "../../etc/cron.d/x", 15),
    _alert(BAD_ID_SIG, 4002, "esD4002", 15, captured=False),
    _alert(MIXED_SIG, 5001, "esE5001", 14),
    _alert(MIXED_SIG, 5002, "bad id;rm -rf", 13),
    _alert(NO_HOST_SIG, 6001, "esF6001", 12, host=""),
    _alert(BIG_SIG, 7001, "esG7001", 11, payload_packets=100),
]
FLOW_PACKETS = 11   # a flow with two response segments


class StamusRun(Run):
    """A run seen from the Stamus routes."""

    def _to(self, route: str) -> list:
        return [r for r in self.requests if r.path.startswith(route)]

    @property
    def searches(self) -> list[dict]:
        return [{name: values[-1] for name, values in parse_qs(urlsplit(r.path).query).items()}
                for r in self._to(ALERTS_ROUTE)]

    @property
    def uploads(self) -> list[dict]:
        """The alert each upload carried, parsed from its multipart body."""
        return [_uploaded_alert(r) for r in self._to(UPLOAD_ROUTE)]

    @property
    def filestore(self) -> list[tuple[str, str]]:
        """(file name, step) of every extract, status, retrieve and download."""
        prefix = "/rest/rules/filestore_pcap/"
        return [tuple(urlsplit(r.path).path[len(prefix):].strip("/").split("/"))
                for r in self.requests if r.path.startswith(prefix)
                and not r.path.startswith(UPLOAD_ROUTE)]

    def steps_of(self, name: str) -> list[str]:
        return [step for file_name, step in self.filestore if file_name == name]


def _uploaded_alert(request) -> dict:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.body)
    [part] = list(message.iter_parts())
    return json.loads(part.get_payload(decode=True))


@pytest.fixture(scope="module")
def sim():
    with StamusSimulator(CATALOGUE, token=TOKEN) as simulator:
        yield simulator


def stamus(sim, pcap_dir, *extra, signature=SIG, flow=None, token=TOKEN, date=ALARM_DATE,
           alarm_id="7001", ca=True, as_json=True, env=None) -> StamusRun:
    return run_against(sim, "stamus", "--address", sim.url, "--signature-id", str(signature),
                       "--pcap-dir", str(pcap_dir),
                       *options_given(("--flow-id", flow), ("--token", token),
                                      ("--alarm-date", date), ("--alarm-id", alarm_id)),
                       *extra, ca=ca, as_json=as_json, env=env, run_type=StamusRun)


def flow_packets(sim, *flows: int) -> list:
    return sorted(packet for flow in flows for packet in read_packets(sim.flow_capture(flow)))


def listed(sim, es_id: str) -> dict:
    """The alert exactly as alerts_tail answers it."""
    answer = requests.get(sim.url + ALERTS_ROUTE, params={"from_date": 0}, timeout=20,
                          headers={"Authorization": f"Token {TOKEN}"},
                          verify=str(sim.ca_bundle)).json()
    return next(result for result in answer["results"] if result["_id"] == es_id)


# --- one flow, and a whole signature ---

def test_one_flow(sim, tmp_path):
    run = stamus(sim, tmp_path, flow=1002)
    assert run.code == 0, run.err
    report = run.report
    assert (report["status"], report["sessions"]) == (
        "ok", {"found": 1, "downloaded": 1, "failed": 0})
    assert report["pcap"].endswith(".pcap") and Path(report["pcap"]).name.startswith(
        "stamus_7001_")
    manifest = assert_result_intact(run, tmp_path)
    assert read_packets(report["pcap"]) == flow_packets(sim, 1002)
    assert report["packets"] == FLOW_PACKETS

    [search] = run.searches
    assert search["qfilter"] == f"alert.signature_id:{SIG} AND flow_id:1002"
    # The five calls, in order; the alert uploaded exactly as alerts_tail gave it.
    assert run.uploads == [listed(sim, "esA1002")]
    assert run.steps_of("esA1002") == ["extract_pcap", "retrieve", "download"]
    assert all("host=probe-west" in r.path for r in run.requests
               if "filestore_pcap" in r.path and "download" not in r.path)

    assert manifest["request"]["vendor"] == "stamus"
    assert manifest["request"]["signature_id"] == SIG and manifest["request"]["flow_id"] == 1002
    [entry] = manifest["sessions"]
    assert entry["status"] == "downloaded" and entry["id"] == "1002"
    assert entry["flow_id"] == 1002 and entry["alert_id"] == "esA1002"
    assert entry["probe"] == "probe-west" and entry["signature_id"] == SIG
    assert entry["src_port"] == 41002 and entry["dest_port"] == 80
    assert entry["start"] == "2024-05-01T11:20:00Z"
    assert_secret_nowhere(TOKEN, run, tmp_path)
    assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("shape", ["flat", "source"])
def test_a_whole_signature_is_merged_into_one_capture(sim, tmp_path, shape):
    sim.shape = shape
    run = stamus(sim, tmp_path)
    assert run.code == 0, run.err
    report = run.report
    assert report["sessions"] == {"found": 5, "downloaded": 4, "failed": 0}
    assert any("1 of 5 sessions have no captured packets" in w for w in report["warnings"])
    manifest = assert_result_intact(run, tmp_path)
    packets = read_packets(report["pcap"])
    assert packets == sorted(packets)
    assert packets == flow_packets(sim, *STORED_FLOWS)
    assert report["packets"] == FLOW_PACKETS * len(STORED_FLOWS)
    # Exactly the stored flows, each extracted once (flow 1003 alerted twice).
    uploaded = [alert.get("_source", alert)["flow_id"] for alert in run.uploads]
    assert sorted(uploaded) == STORED_FLOWS
    assert sim.uncaptured_requests == []
    if shape == "source":
        assert all(set(alert) >= {"_id", "_source"} for alert in run.uploads)
    statuses = {entry["id"]: entry["status"] for entry in manifest["sessions"]}
    assert statuses == {"1001": "downloaded", "1002": "downloaded", "1003": "downloaded",
                        "1004": "not captured", "1005": "downloaded"}


def test_the_time_window_goes_out_as_epoch_ms(sim, tmp_path):
    run = stamus(sim, tmp_path, "--before", "30", "--after", "5")
    assert run.code == 0, run.err
    [search] = run.searches
    assert (int(search["from_date"]), int(search["to_date"])) == (
        int((NOW - dt.timedelta(minutes=30)).timestamp() * 1000),
        int((NOW + dt.timedelta(minutes=5)).timestamp() * 1000))
    # 1001 and 1002 alerted before the window, 1006 long before: never asked for.
    assert sorted(a["flow_id"] for a in run.uploads) == [1003, 1005]


def test_paging_reaches_the_end(sim, tmp_path):
    sim.max_page_size = 2
    run = stamus(sim, tmp_path)
    assert run.code == 0, run.err
    assert [search["page"] for search in run.searches] == ["1", "2", "3"]
    assert run.report["sessions"] == {"found": 5, "downloaded": 4, "failed": 0}


def test_probe_option_overrides_the_alerts_host(sim, tmp_path):
    run = stamus(sim, tmp_path, "--probe", " probe north 1 ", flow=1001)
    assert run.code == 0, run.err
    probed = [r.path for r in run.requests if "filestore_pcap" in r.path
              and "download" not in r.path]
    assert len(probed) == 3
    assert all(parse_qs(urlsplit(path).query)["host"] == ["probe north 1"] for path in probed)


def test_token_from_the_environment_and_never_shown(sim, tmp_path):
    run = stamus(sim, tmp_path, "--alarm-id", "7002", token=None, as_json=False,
                 env={"SRP_STAMUS_TOKEN": TOKEN})
    assert run.code == 0, run.err
    assert "OK" in run.out and "4 downloaded" in run.out
    assert_secret_nowhere(TOKEN, run, tmp_path)


# --- faults ---

def test_a_download_cut_mid_body_restarts_at_the_upload(sim, tmp_path):
    sim.set_faults(Fault("cut", sessions={"1002"}, first=1, after_bytes=100))
    run = stamus(sim, tmp_path, flow=1002)
    assert run.code == 0, run.err
    assert run.report["sessions"] == {"found": 1, "downloaded": 1, "failed": 0}
    assert len(run.uploads) == 2
    assert run.steps_of("esA1002") == ["extract_pcap", "retrieve", "download"] * 2
    assert read_packets(run.report["pcap"]) == flow_packets(sim, 1002)
    assert_result_intact(run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_a_cut_download_gives_back_what_it_counted_against_max_bytes(sim, tmp_path):
    size = sim.flow_capture(7001).stat().st_size
    # Cut after one 64 KiB read has been counted; the cap holds one flow but not one and a
    # half: the restarted round fits only if the broken one gave its bytes back.
    sim.set_faults(Fault("cut", sessions={"7001"}, first=1, after_bytes=100_000))
    assert size // 2 > 65536
    run = stamus(sim, tmp_path, "--max-bytes", str(size + 40_000), signature=BIG_SIG)
    assert run.code == 0, run.err
    assert len(run.uploads) == 2 and run.report["bytes"] == size
    assert_nothing_half_written(tmp_path)


def test_a_download_cut_every_time_is_an_error_after_three_rounds(sim, tmp_path):
    sim.set_faults(Fault("cut", sessions={"1002"}, after_bytes=100))
    run = stamus(sim, tmp_path, flow=1002)
    assert run.code == 1, run.err
    report = run.report
    assert report["status"] == "error" and report["pcap"] is None
    [error] = report["errors"]
    assert "1002" in error and "broke off" in error and "3 times" in error
    assert len(run.uploads) == 3
    assert list(tmp_path.glob("*.pcap*")) == []
    assert_nothing_half_written(tmp_path)


def test_one_flow_cut_every_time_makes_a_partial_capture(sim, tmp_path):
    sim.set_faults(Fault("cut", sessions={"1003"}, after_bytes=100))
    run = stamus(sim, tmp_path)
    assert run.code == 4, run.err
    report = run.report
    assert report["status"] == "partial"
    assert report["sessions"] == {"found": 5, "downloaded": 3, "failed": 1}
    assert "1003" in report["errors"][0]
    assert read_packets(report["pcap"]) == flow_packets(sim, 1001, 1002, 1005)
    manifest = assert_result_intact(run, tmp_path)
    assert {e["id"]: e["status"] for e in manifest["sessions"]}["1003"] == "failed"
    assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("fault, flow, reason", [
    ("no-alert", 1001, f"no alert of signature {SIG} (flow 1001) in the time window"),
    ("no-alert", None, f"no alert of signature {SIG} in the time window"),
    ("no-capture-file", 1001, "the alert has no capture_file: conditional pcap did not store "
                              "the flow"),
    ("header-only", 1001, "the extracted capture is a bare header: the probe kept no packet "
                          "of the flow"),
])
def test_no_data_says_which(sim, tmp_path, fault, flow, reason):
    sim.set_faults(fault)
    run = stamus(sim, tmp_path, flow=flow)
    assert run.code == 3, run.err
    report = run.report
    assert report["status"] == "no-data" and report["reason"] == reason
    assert report["pcap"] is None and report["errors"] == []
    if fault != "header-only":
        assert run.uploads == []
    assert list(tmp_path.glob("*.pcap*")) == []
    assert Path(report["manifest"]).is_file()
    assert_nothing_half_written(tmp_path)


def test_a_signature_whose_flows_were_not_stored_is_no_data(sim, tmp_path):
    run = stamus(sim, tmp_path, signature=NOCAP_SIG)
    assert run.code == 3, run.err
    assert run.report["reason"] == (f"no alert of signature {NOCAP_SIG} has a capture_file: "
                                    f"conditional pcap stored none of its flows")
    assert run.uploads == [] and sim.uncaptured_requests == []


def test_a_slow_extraction_is_waited_for(sim, tmp_path):
    sim.set_faults(Fault("slow-extract", latency_ms=1500))
    run = stamus(sim, tmp_path, flow=1001)
    assert run.code == 0, run.err
    assert run.seconds >= 1.5


def test_an_extraction_slower_than_extract_timeout_fails_saying_so(sim, tmp_path):
    sim.set_faults(Fault("slow-extract", latency_ms=4000))
    run = stamus(sim, tmp_path, "--extract-timeout", "1", flow=1001)
    assert run.code == 1, run.err
    [error] = run.report["errors"]
    assert "1001" in error and "extraction" in error and "did not answer within 1 s" in error
    assert run.seconds < 15
    assert_nothing_half_written(tmp_path)


def test_an_extraction_that_timed_out_is_never_sent_again(sim, tmp_path):
    # The probe may still be extracting: a second request would start a second extraction.
    sim.set_faults(Fault("slow-extract", latency_ms=3000))
    run = stamus(sim, tmp_path, "--extract-timeout", "1", flow=1001)
    assert run.code == 1, run.err
    assert run.steps_of("esA1001") == ["extract_pcap"]
    assert len(run.uploads) == 1


def test_an_html_500_from_the_extraction_is_quoted(sim, tmp_path):
    sim.set_faults("html-500")
    run = stamus(sim, tmp_path, flow=1001)
    assert run.code == 1, run.err
    [error] = run.report["errors"]
    assert "extraction" in error and "HTTP 500" in error and "Server Error (500)" in error
    assert "<" not in error
    assert_nothing_half_written(tmp_path)


def test_401_is_an_error_in_one_line_without_the_token(sim, tmp_path):
    sim.set_faults("401")
    run = stamus(sim, tmp_path)
    assert run.code == 1
    assert run.report["status"] == "error"
    line = one_error_line(run.err)
    assert "401" in line and "Invalid token" in line
    assert run.uploads == []
    assert_secret_nowhere(TOKEN, run, tmp_path)


def test_a_wrong_token_is_never_echoed(sim, tmp_path):
    wrong = "WrongToken-7f3a9c0d1e"
    run = stamus(sim, tmp_path, token=wrong)
    assert run.code == 1 and "401" in one_error_line(run.err)
    assert_secret_nowhere(wrong, run, tmp_path)


# --- hostile alert ids, and ids that are not integers ---

def test_an_id_that_is_no_file_name_is_never_uploaded(sim, tmp_path):
    run = stamus(sim, tmp_path, signature=BAD_ID_SIG)
    assert run.code == 1, run.err
    line = one_error_line(run.err)
    assert "4001" in line and "refused" in line and "_id" in line
    assert run.uploads == [] and run.filestore == []
    assert all("cron" not in r.path and b"cron" not in r.body for r in run.requests)


def test_an_alert_naming_no_probe_needs_the_probe_option(sim, tmp_path):
    run = stamus(sim, tmp_path / "without", signature=NO_HOST_SIG)
    assert run.code == 1, run.err
    assert "6001" in one_error_line(run.err) and "--probe" in one_error_line(run.err)
    assert run.uploads == []
    run = stamus(sim, tmp_path / "with", "--probe", "probe-east", signature=NO_HOST_SIG)
    assert run.code == 0, run.err
    assert [alert["_id"] for alert in run.uploads] == ["esF6001"]


def test_a_bad_id_beside_good_ones_is_skipped_with_a_warning(sim, tmp_path):
    run = stamus(sim, tmp_path, signature=MIXED_SIG)
    assert run.code == 0, run.err
    assert [alert["_id"] for alert in run.uploads] == ["esE5001"]
    assert any("5002" in w and "not uploaded" in w for w in run.report["warnings"])
    assert all("rm" not in r.path and b"rm -rf" not in r.body for r in run.requests)


@pytest.mark.parametrize("option, value", [
    ("--signature-id", "12abc"), ("--signature-id", "1 OR *"), ("--signature-id", "-5"),
    ("--flow-id", "1e3"), ("--flow-id", "1001 OR flow_id:*"), ("--flow-id", " x "),
    ("--probe", "probe\n1"),
])
def test_bad_ids_are_usage_errors_before_any_request(sim, tmp_path, option, value):
    args = ["stamus", "--address", sim.url, "--token", TOKEN, "--pcap-dir", str(tmp_path)]
    if option != "--signature-id":
        args += ["--signature-id", str(SIG)]
    run = run_against(sim, *args, option, value)
    assert run.code == 2, run.err
    assert run.report["status"] == "error" and run.report["errors"]
    one_error_line(run.err)
    assert run.requests == []


# --- reuse, TLS ---

def test_the_same_alarm_reuses_its_result_and_force_refetches(sim, tmp_path):
    first = stamus(sim, tmp_path, alarm_id="8001")
    assert first.code == 0 and first.report["reused"] is False
    again = stamus(sim, tmp_path, alarm_id="8001")
    assert again.code == 0, again.err
    assert again.report["reused"] is True and again.report["pcap"] == first.report["pcap"]
    assert again.uploads == [] and again.searches == []
    forced = stamus(sim, tmp_path, "--force", alarm_id="8001")
    assert forced.code == 0 and len(forced.uploads) == 4
    assert forced.report["sha256"] == first.report["sha256"]
    assert_nothing_half_written(tmp_path)


def test_ca_bundle_wins_over_requests_and_curl_ca_bundle(sim, tmp_path):
    run = stamus(sim, tmp_path / "with", flow=1001, env=CA_BUNDLE_ENVIRONMENT)
    assert run.code == 0, run.err
    refused = stamus(sim, tmp_path / "without", flow=1001, env=CA_BUNDLE_ENVIRONMENT,
                     ca=False)
    assert refused.code == 1
    line = one_error_line(refused.err)
    assert "TLS" in line and "--ca-bundle" in line
    assert refused.requests == []


# --- a server that does not apply the filter ---

class _FilterIgnoringHandler(StamusHandler):
    @property
    def params(self):
        return {name: value for name, value in super().params.items() if name != "qfilter"}


class _FilterIgnoringStamus(StamusSimulator):
    handler_class = _FilterIgnoringHandler


def test_alerts_of_other_signatures_are_never_fetched(tmp_path):
    catalogue = [_alert(SIG, 1, "esOne", 20), _alert(OTHER_SIG, 2, "esTwo", 10)]
    with _FilterIgnoringStamus(catalogue, token=TOKEN) as simulator:
        run = stamus(simulator, tmp_path)
        assert run.code == 0, run.err
        assert [alert["flow_id"] for alert in run.uploads] == [1]
        assert any("1 alerts of another signature" in w for w in run.report["warnings"])
