"""`srp-pcap demo`: the whole product on one machine, with no appliance.

Starts the NetMon, Stamus and Cisco IPS simulators on loopback (HTTPS, each with its own
self-signed certificate), runs one retrieval against each through the real command line
(the same commands an alarm action runs), so their summaries print as an analyst sees them,
and leaves the merged captures and manifests in one folder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

from srp.errors import EXIT_NO_DATA, EXIT_OK, EXIT_PARTIAL
from srp.redaction import redact, register_secret

NETMON_QUERY = "www.example.com"


def run_demo(folder: Path, echo: Callable[[str], None], run_command) -> int:
    """Run the three retrievals into `folder`; the exit code of the worst of them.

    `run_command(args)` runs one srp-pcap command line and returns its exit code."""
    from srp.simulators.cisco import CiscoSimulator
    from srp.simulators.cisco import default_alerts as cisco_alerts
    from srp.simulators.netmon import NetMonSimulator, default_sessions
    from srp.simulators.stamus import StamusSimulator
    from srp.simulators.stamus import default_alerts as stamus_alerts

    netmon_sessions, stamus_catalogue, cisco_catalogue = (
        default_sessions(12), stamus_alerts(6), cisco_alerts())
    common = ["--pcap-dir", str(folder), "--force"]
    echo("Starting the NetMon, Stamus and Cisco IPS simulators on loopback...")
    with contextlib.ExitStack() as stack:
        netmon = stack.enter_context(NetMonSimulator(netmon_sessions))
        stamus = stack.enter_context(StamusSimulator(stamus_catalogue))
        # The IP log completes a moment after it is first asked for: the run waits for it.
        cisco = stack.enter_context(CiscoSimulator(cisco_catalogue, complete_after=1.0))
        netmon.prepare()
        for secret in (netmon.api_key, stamus.token, cisco.password):
            register_secret(secret)
        retrievals = [
            ("LogRhythm NetMon: every session of a domain",
             ["netmon", "--address", netmon.url, "--api-key", netmon.api_key,
              "--ca-bundle", str(netmon.ca_bundle), "--query", NETMON_QUERY,
              "--alarm-id", "demo-netmon"]),
            ("Stamus SCS: every alerting flow of a signature",
             ["stamus", "--address", stamus.url, "--token", stamus.token,
              "--ca-bundle", str(stamus.ca_bundle),
              "--signature-id", str(stamus_catalogue[0].signature_id),
              "--alarm-id", "demo-stamus"]),
            ("Cisco IPS: the IP logs of an alert, waited for until complete",
             ["cisco", "--address", cisco.url, "--username", cisco.username,
              "--password", cisco.password, "--ca-bundle", str(cisco.ca_bundle),
              "--event-id", str(cisco_catalogue[1].event_id), "--alarm-id", "demo-cisco"]),
        ]
        codes = []
        for title, args in retrievals:
            echo("")
            echo(f"=== {title}")
            echo(redact("$ srp-pcap " + " ".join(args + common)))
            codes.append(run_command(args + common))
    echo("")
    echo(f"The captures and their manifests are in {folder.resolve()}")
    echo("Open a capture in Wireshark, or summarize one with: srp-pcap summary FILE")
    return max(codes, key=_severity)


def _severity(code: int) -> int:
    """ok < no data < partial < any error: the demo ends with its worst retrieval's code."""
    return {EXIT_OK: 0, EXIT_NO_DATA: 1, EXIT_PARTIAL: 2}.get(code, 3)
