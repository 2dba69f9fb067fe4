"""`srp-pcap demo`: the whole product on one machine, with no appliance.

Starts the NetMon, Stamus and Cisco IPS simulators and LogRhythm's case and alarm APIs on
loopback (HTTPS, each with its own self-signed certificate), runs one retrieval against each
appliance through the real command line (the same commands an alarm action runs, each
attaching its capture to its alarm's case), so their summaries print as an analyst sees
them, and leaves the merged captures and manifests in one folder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

from srp.errors import EXIT_NO_DATA, EXIT_OK, EXIT_PARTIAL
from srp.redaction import redact, register_secret

NETMON_QUERY = "www.example.com"
# The three alarms, as LogRhythm numbers them, and the rules that raised them.
ALARMS = {"netmon": (9001, f"Suspicious domain: {NETMON_QUERY}"),
          "stamus": (9002, "Stamus: ET MALWARE signature"),
          "cisco": (9003, "Cisco IPS: signature 5081")}


def run_demo(folder: Path, echo: Callable[[str], None], run_command) -> int:
    """Run the three retrievals into `folder`; the exit code of the worst of them.

    `run_command(args)` runs one srp-pcap command line and returns its exit code."""
    from srp.simulators.cisco import CiscoSimulator
    from srp.simulators.cisco import default_alerts as cisco_alerts
    from srp.simulators.logrhythm import AlarmSpec, LogRhythmSimulator
    from srp.simulators.netmon import NetMonSimulator, default_sessions
    from srp.simulators.stamus import StamusSimulator
    from srp.simulators.stamus import default_alerts as stamus_alerts

    netmon_sessions, stamus_catalogue, cisco_catalogue = (
        default_sessions(12), stamus_alerts(6), cisco_alerts())
    common = ["--pcap-dir", str(folder), "--force"]
    echo("Starting the NetMon, Stamus and Cisco IPS simulators and LogRhythm's case API on "
         "loopback...")
    with contextlib.ExitStack() as stack:
        lr = stack.enter_context(LogRhythmSimulator(
            [AlarmSpec(alarm_id, rule_name=rule) for alarm_id, rule in ALARMS.values()]))
        netmon = stack.enter_context(NetMonSimulator(netmon_sessions))
        stamus = stack.enter_context(StamusSimulator(stamus_catalogue))
        # The IP log completes a moment after it is first asked for: the run waits for it.
        cisco = stack.enter_context(CiscoSimulator(cisco_catalogue, complete_after=1.0))
        netmon.prepare()
        for secret in (netmon.api_key, stamus.token, cisco.password, lr.token):
            register_secret(secret)
        case = ["--lr-address", lr.url, "--lr-token", lr.token,
                "--lr-ca-bundle", str(lr.ca_bundle), "--case", "auto"]
        retrievals = [
            ("LogRhythm NetMon: every session of a domain",
             ["netmon", "--address", netmon.url, "--api-key", netmon.api_key,
              "--ca-bundle", str(netmon.ca_bundle), "--query", NETMON_QUERY,
              "--alarm-id", str(ALARMS["netmon"][0])]),
            ("Stamus SCS: every alerting flow of a signature",
             ["stamus", "--address", stamus.url, "--token", stamus.token,
              "--ca-bundle", str(stamus.ca_bundle),
              "--signature-id", str(stamus_catalogue[0].signature_id),
              "--alarm-id", str(ALARMS["stamus"][0])]),
            ("Cisco IPS: the IP logs of an alert, waited for until complete",
             ["cisco", "--address", cisco.url, "--username", cisco.username,
              "--password", cisco.password, "--ca-bundle", str(cisco.ca_bundle),
              "--event-id", str(cisco_catalogue[1].event_id),
              "--alarm-id", str(ALARMS["cisco"][0])]),
        ]
        codes = []
        for title, args in retrievals:
            echo("")
            echo(f"=== {title}")
            echo(redact("$ srp-pcap " + " ".join(args + common + case)))
            codes.append(run_command(args + common + case))
    echo("")
    echo(f"The captures and their manifests are in {folder.resolve()}; each is in its "
         f"alarm's case too")
    echo("Open a capture in Wireshark, or summarize one with: srp-pcap summary FILE")
    return max(codes, key=_severity)


def _severity(code: int) -> int:
    """ok < no data < partial < any error: the demo ends with its worst retrieval's code."""
    return {EXIT_OK: 0, EXIT_NO_DATA: 1, EXIT_PARTIAL: 2}.get(code, 3)
