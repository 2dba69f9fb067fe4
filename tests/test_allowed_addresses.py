"""--allowed-addresses: the appliances a retrieval may send its credentials to.

An MSSP's one action serves many sensors, its address taken from an alarm field, which a
forged log can fill: an address outside the list must be a usage error before any
connection. End to end for every vendor (the real command line against its simulator over
HTTPS on loopback), and the list's reading and matching in-process: addresses, IPv4 and
IPv6 ranges, IPv4-mapped IPv6 addresses, host names (never resolved), ports, invalid
entries, an empty list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ALARM_DATE, NOW, Run, assert_secret_nowhere, one_error_line, run_against

from srp.errors import UsageError
from srp.retrieval.inputs import AllowedAddresses, parse_address
from srp.simulators.cisco import AlertSpec as CiscoAlert
from srp.simulators.cisco import CiscoSimulator
from srp.simulators.https import VendorSimulator
from srp.simulators.netmon import NetMonSimulator, SessionSpec
from srp.simulators.stamus import AlertSpec as StamusAlert
from srp.simulators.stamus import StamusSimulator

NAMES_ONLY_HINT = "list the host name itself; names are never resolved for this check"


@dataclass
class Appliance:
    """A vendor's simulator, and the command line (all but --address and --pcap-dir) that
    retrieves its one alarm."""

    vendor: str
    simulator: VendorSimulator
    command: list[str]
    secret: str

    def run(self, pcap_dir: Path, allowed: str | None, address: str | None = None,
            as_json: bool = True) -> Run:
        """The retrieval from `address` (default: the simulator's own), with
        --allowed-addresses `allowed` unless it is None."""
        extra = [] if allowed is None else ["--allowed-addresses", allowed]
        return run_against(self.simulator, *self.command,
                           "--address", address or self.simulator.url,
                           "--pcap-dir", str(pcap_dir), *extra, as_json=as_json)

    def at(self, host: str) -> str:
        """The simulator's address under another name for its host."""
        return f"{host}:{self.simulator.port}"


def netmon() -> Appliance:
    key = "sim-key-5f0c2a9e71"
    session = SessionSpec(id="allowed-1", domain="allowed.example", payload_packets=1,
                          start=NOW - dt.timedelta(minutes=10))
    return Appliance("netmon", NetMonSimulator([session], api_key=key),
                     ["netmon", "--api-key", key, "--query", "allowed.example",
                      "--alarm-date", ALARM_DATE], key)


def stamus() -> Appliance:
    token = "0123456789abcdef0123456789abcdef01234567"
    alert = StamusAlert(signature_id=2029743, flow_id=1001, es_id="esAllowed1",
                        timestamp=NOW - dt.timedelta(minutes=10))
    return Appliance("stamus", StamusSimulator([alert], token=token),
                     ["stamus", "--token", token, "--signature-id", "2029743",
                      "--flow-id", "1001", "--alarm-date", ALARM_DATE], token)


def cisco() -> Appliance:
    password = "Sdee-pw-3f9a1c77"
    recent = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    alert = CiscoAlert(5001, recent.replace(microsecond=0), (101,))
    simulator = CiscoSimulator([alert], username="sdee-viewer", password=password)
    return Appliance("cisco", simulator,
                     ["cisco", "--username", "sdee-viewer", "--password", password,
                      "--event-id", "5001"], password)


@pytest.fixture(scope="module", params=[netmon, stamus, cisco], ids=lambda make: make.__name__)
def appliance(request):
    made = request.param()
    with made.simulator:
        yield made


def assert_refused(appliance: Appliance, run: Run, pcap_dir: Path, message: str) -> None:
    """Exit 2 with `message` as the one error line, and not one request to the appliance:
    its credentials never left."""
    assert run.code == 2, run.err
    assert one_error_line(run.err) == f"srp-pcap: error: {message}"
    assert run.requests == []
    assert_secret_nowhere(appliance.secret, run, pcap_dir)
    if run.report is not None:
        assert run.report["status"] == "error" and run.report["errors"] == [message]
        assert run.report["pcap"] is None
    else:
        assert f"srp-pcap {appliance.vendor}: ERROR: {message}" in run.out.splitlines()


# --- end to end, every vendor ---

@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_an_address_outside_the_list_is_refused_before_any_request(appliance, tmp_path,
                                                                   as_json):
    run = appliance.run(tmp_path, " 10.20.0.0/16 , sensor-1.example.net", as_json=as_json)
    assert_refused(appliance, run, tmp_path,
                   "--address 127.0.0.1 is not in --allowed-addresses (10.20.0.0/16, "
                   "sensor-1.example.net): list the address or its range; names are never "
                   "resolved for this check")


@pytest.mark.parametrize("allowed, host", [
    ("127.0.0.1", "127.0.0.1"),
    ("10.20.0.0/16, 127.0.0.0/8", "127.0.0.1"),
    ("sensor-1.example.net,localhost", "localhost"),
    ("LocalHost.", "localhost"),
], ids=["address", "range", "name", "name-in-other-case"])
def test_the_appliance_is_allowed_by_its_address_a_range_or_its_name(appliance, tmp_path,
                                                                     allowed, host):
    run = appliance.run(tmp_path, allowed, address=appliance.at(host))
    assert run.code == 0, run.err
    assert run.report["status"] == "ok" and run.report["pcap"]
    assert run.requests


def test_a_name_is_refused_when_only_ranges_are_listed(appliance, tmp_path):
    run = appliance.run(tmp_path, "127.0.0.0/8, ::1", address=appliance.at("localhost"))
    assert_refused(appliance, run, tmp_path,
                   f"--address localhost is not in --allowed-addresses (127.0.0.0/8, ::1): "
                   f"{NAMES_ONLY_HINT}")


@pytest.mark.parametrize("entry", ["*.example.net", "127.0.0.1:443", "https://127.0.0.1",
                                   "127.0.0.300", "127.0.0.1/33"])
def test_an_invalid_entry_is_a_usage_error(appliance, tmp_path, entry):
    # The list also names the appliance: only the invalid entry can stop the run.
    run = appliance.run(tmp_path, f"127.0.0.1, {entry}")
    assert_refused(appliance, run, tmp_path,
                   f"--allowed-addresses entry {entry!r} is not a host name, an address or "
                   f"a CIDR range (no ports, URLs or wildcards)")


@pytest.mark.parametrize("allowed", ["", "   ", " , ,"], ids=["empty", "spaces", "commas"])
def test_an_empty_list_restricts_nothing(appliance, tmp_path, allowed):
    run = appliance.run(tmp_path, allowed)
    assert run.code == 0, run.err
    assert run.report["status"] == "ok" and run.requests


# --- the list, in-process ---

def check(allowed: str | None, address: str) -> None:
    """`address` as --address gives it, checked against --allowed-addresses `allowed`."""
    AllowedAddresses.from_option(allowed).check(parse_address(address))


def refusal(allowed: str | None, address: str) -> str:
    with pytest.raises(UsageError) as raised:
        check(allowed, address)
    return str(raised.value)


@pytest.mark.parametrize("allowed, address", [
    ("10.20.0.5", "10.20.0.5"),
    ("10.20.0.5", "https://10.20.0.5:8443"),
    ("10.20.0.0/16", "10.20.255.254:443"),
    ("10.0.0.0/255.0.0.0", "10.9.8.7"),
    ("2001:db8::7", "[2001:db8::7]"),
    ("2001:DB8::/32", "https://[2001:db8:ffff::1]:8443"),
    ("sensor-1.example.net", "sensor-1.example.net"),
    ("sensor-1.example.net", "SENSOR-1.Example.Net:8443"),
    ("Sensor-1.EXAMPLE.net", "https://sensor-1.example.net"),
    ("sensor-1.example.net.", "sensor-1.example.net"),
    ("sensor-1.example.net", "sensor-1.example.net.:443"),
    (" 192.0.2.0/24 ,, sensor-1.example.net , ", "sensor-1.example.net"),
    ("10.20.0.0/16", "[::ffff:10.20.0.5]:443"),
    ("::ffff:10.20.0.5", "10.20.0.5"),
    ("::ffff:10.20.0.0/112", "10.20.3.4"),
    ("", "anything.example"),
    (None, "203.0.113.9"),
    (" , ", "203.0.113.9"),
])
def test_allowed(allowed, address):
    check(allowed, address)


@pytest.mark.parametrize("allowed, address", [
    ("10.20.0.5", "10.20.0.6"),
    ("10.20.0.0/16", "10.21.0.1:443"),
    ("2001:db8::/32", "[2001:db9::1]"),
    ("2001:db8::7", "[2001:db8::8]"),
    ("sensor-1.example.net", "sensor-2.example.net"),
    ("sensor-1.example.net", "sensor-1.example.net.evil.example"),
    ("sensor-1.example.net", "evil-sensor-1.example.net"),
    ("example.net", "sensor-1.example.net"),
    ("sensor-1", "sensor-1.."),
    ("127.0.0.1", "localhost"),
])
def test_refused(allowed, address):
    assert f" is not in --allowed-addresses ({allowed})" in refusal(allowed, address)


@pytest.mark.parametrize("allowed, address", [
    ("10.20.0.0/16", "[::ffff:203.0.113.9]"),
    ("10.20.0.0/16", "https://[::FFFF:CB00:7109]:8443"),
    ("::/0", "[::ffff:10.20.0.5]"),
    ("::ffff:0:0/96", "[2001:db8::1]"),
    ("::ffff:10.20.0.0/112", "10.21.0.1"),
])
def test_an_ipv4_mapped_ipv6_address_is_compared_as_its_ipv4_address(allowed, address):
    assert "is not in --allowed-addresses" in refusal(allowed, address)


def test_a_v4_mapped_address_inside_the_range_is_allowed_as_its_ipv4_address():
    check("10.20.0.0/16", "[::ffff:10.20.0.5]")
    check("::ffff:0:0/96", "203.0.113.9")


@pytest.mark.parametrize("address", ["sensor-1.example.net", "167772161", "10.20.0.5."])
def test_a_name_is_never_matched_against_the_ranges(address):
    # 167772161 and 10.20.0.5. are names to parse_address, though a resolver reads them as
    # 10.0.0.1 and 10.20.0.5: listed only by name, they never pass.
    message = refusal("10.0.0.0/8", address)
    assert message.endswith(f"(10.0.0.0/8): {NAMES_ONLY_HINT}")


def test_an_address_is_never_matched_against_the_names():
    assert refusal("localhost, sensor-1.example.net", "127.0.0.1").endswith(
        ": list the address or its range; names are never resolved for this check")


def test_the_hint_is_left_out_when_the_list_holds_one_kind_of_entry():
    assert refusal("10.20.0.0/16", "203.0.113.9") == \
        "--address 203.0.113.9 is not in --allowed-addresses (10.20.0.0/16)"
    assert refusal("sensor-1.example.net", "sensor-9.example.net") == \
        "--address sensor-9.example.net is not in --allowed-addresses (sensor-1.example.net)"


def test_a_long_list_is_cut_in_the_error():
    sensors = ", ".join(f"sensor-{n}.example.net" for n in range(1, 51))
    assert refusal(sensors, "sensor-99.example.net") == (
        "--address sensor-99.example.net is not in --allowed-addresses (sensor-1.example.net, "
        "sensor-2.example.net, sensor-3.example.net, sensor-4.example.net, "
        "sensor-5.example.net and 45 more)")


@pytest.mark.parametrize("entry", [
    "*.example.net", "sensor-*.example.net", "sensor-1.example.net:443", "[::1]:443",
    "https://sensor-1.example.net", "sensor-1.example.net/", "10.0.0.300", "10.1",
    "167772161", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/8/8", "sensor..example.net",
    "-sensor.example.net", "sensor 1.example.net", "sensor_1.example.net", ".",
    "a" * 64 + ".example.net",
])
def test_an_entry_that_is_no_name_address_or_range_is_refused(entry):
    with pytest.raises(UsageError) as raised:
        AllowedAddresses.from_option(f"10.20.0.0/16, {entry}")
    assert str(raised.value) == (f"--allowed-addresses entry {entry!r} is not a host name, "
                                 f"an address or a CIDR range (no ports, URLs or wildcards)")


@pytest.mark.parametrize("entry, network, address", [
    ("10.20.30.40/16", "10.20.0.0/16", "10.20.30.40"),
    ("2001:db8::7/32", "2001:db8::/32", "2001:db8::7"),
])
def test_a_range_with_host_bits_set_is_refused_not_rounded(entry, network, address):
    with pytest.raises(UsageError) as raised:
        AllowedAddresses.from_option(entry)
    assert str(raised.value) == (f"--allowed-addresses entry {entry!r} has host bits set: "
                                 f"write {network} for the range, or {address} for the address")
