"""`srp-pcap simulate ...`: run a simulator in the foreground until Ctrl-C.

Only click is imported here; a simulator's modules load when its command runs.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

import click


@click.group(name="simulate")
def simulate() -> None:
    """Run a look-alike of a capture appliance on this machine, for tests and demos."""


def fault_option(module: str, names: str):
    """--fault NAME or NAME:N (the first N requests it applies to), repeatable, the names
    checked against the FAULTS of srp.simulators.<module>. `names` lists them for --help,
    which stays import-free."""

    def parse(ctx, param, values):
        from importlib import import_module

        from srp.simulators.faults import Fault

        known = import_module(f"srp.simulators.{module}").FAULTS
        faults = []
        for value in values:
            name, _, count = value.partition(":")
            if name not in known:
                raise click.BadParameter(f"{name!r} is not one of {', '.join(known)}")
            if count and not count.isdigit():
                raise click.BadParameter(f"{value!r}: the count after ':' must be a whole "
                                         f"number")
            faults.append(Fault(name, first=int(count) if count else None))
        return faults

    return click.option("--fault", "faults", multiple=True, callback=parse, metavar="NAME[:N]",
                        help=f"Switch a fault on, for every request or the first N: {names}. "
                             f"Repeatable.")


def serve(simulator, faults, *, title: str, details: list[str], retrieve: str,
          credentials: str = "", selection: str = "",
          example: Callable[[], str] | None = None) -> None:
    """Start `simulator`; say where it listens, its `details` and `faults`, and the srp-pcap
    command line that retrieves `retrieve` from it (with `credentials` and `selection`, or
    the one `example()` makes once it listens); serve until Ctrl-C or SIGTERM."""
    try:
        simulator.start()
    except OSError as exc:
        where = (f"{exc.filename}: " if exc.filename
                 else f"{simulator.host}:{simulator.requested_port}: ")
        raise click.ClickException(f"cannot start the simulator: {where}{exc.strerror or exc}")
    stopped = threading.Event()
    # Ctrl-C and SIGTERM both end it cleanly (the temporary files go too), also when the
    # shell started it with SIGINT ignored, as it does for a background job.
    previous = {number: signal.signal(number, lambda *_: stopped.set())
                for number in (signal.SIGINT, signal.SIGTERM)}
    vendor = click.get_current_context().info_name   # `simulate netmon` -> `srp-pcap netmon`
    try:
        click.echo(f"{title} simulator listening on {simulator.url}")
        click.echo(f"CA bundle: {simulator.ca_bundle}")
        for line in details:
            click.echo(line)
        if faults:
            click.echo(f"Faults:    {', '.join(fault.name for fault in faults)}")
        click.echo(f"Retrieve {retrieve} with:")
        if example is not None:
            click.echo(f"  {example()}")
        else:
            click.echo(f"  srp-pcap {vendor} --address {simulator.url} {credentials} "
                       f"--ca-bundle {simulator.ca_bundle} {selection} --pcap-dir ./pcaps")
        click.echo("Press Ctrl-C to stop.")
        while not stopped.wait(0.5):
            pass
    finally:
        simulator.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    click.echo("Stopped.")


def listening_options(command):
    """--host, --port and --cert-dir, which every simulator takes."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on (the certificate names it and the loopback "
                          "names)."),
        click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
                     help="Port to listen on; 0 picks a free one."),
        click.option("--cert-dir", type=click.Path(file_okay=False), metavar="DIR",
                     help="Write the certificate and key here (default: a temporary folder "
                          "removed at exit)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@simulate.command(name="netmon")
@listening_options
@click.option("--api-key", metavar="KEY", help="The API key to accept (default: a random one).")
@fault_option("netmon", "503, reset, 401, html, truncated, slow, not-7z-garbage")
@click.option("--sessions", type=click.IntRange(1, 100_000), default=12, show_default=True,
              metavar="N", help="Sessions in the catalogue (over the last hour, 3 domains, "
                                "every sixth not captured).")
def netmon(host, port, cert_dir, api_key, faults, sessions):
    """A LogRhythm NetMon look-alike over HTTPS, serving until interrupted."""
    from srp.simulators.netmon import NetMonSimulator, default_sessions

    catalogue = default_sessions(sessions)
    simulator = NetMonSimulator(catalogue, api_key=api_key, faults=faults, host=host,
                                port=port, cert_dir=cert_dir)

    captured = sum(spec.captured for spec in catalogue)
    domains = sorted({spec.domain for spec in catalogue})
    serve(simulator, faults, title="NetMon",
          details=[f"API key:   {simulator.api_key}",
                   f"Sessions:  {len(catalogue)} over the last hour, {captured} captured, "
                   f"domains {', '.join(domains)}"],
          retrieve="them", credentials=f"--api-key {simulator.api_key}",
          selection=f"--query {domains[0]}")


@simulate.command(name="stamus")
@listening_options
@click.option("--token", metavar="TOKEN", help="The API token to accept (default: a random one).")
@fault_option("stamus", "cut, no-alert, no-capture-file, header-only, slow-extract, "
                        "html-500, 401")
@click.option("--alerts", type=click.IntRange(1, 10_000), default=6, show_default=True,
              metavar="N", help="Alerting flows in the catalogue (over the last hour, two "
                                "signatures, every fourth flow not stored).")
@click.option("--shape", type=click.Choice(["flat", "source"]), default="flat",
              show_default=True,
              help="alerts_tail results as flat alerts with _id, or as _id + _source.")
def stamus(host, port, cert_dir, token, faults, alerts, shape):
    """A Stamus Central Server (Scirius) look-alike over HTTPS, serving until interrupted."""
    from srp.simulators.stamus import StamusSimulator, default_alerts

    catalogue = default_alerts(alerts)
    simulator = StamusSimulator(catalogue, token=token, faults=faults, shape=shape, host=host,
                                port=port, cert_dir=cert_dir)

    signatures = sorted({spec.signature_id for spec in catalogue})
    stored = len({spec.flow_id for spec in catalogue if spec.captured})
    serve(simulator, faults, title="Stamus",
          details=[f"Token:     {simulator.token}",
                   f"Alerts:    {len(catalogue)} of {alerts} flows over the last hour, {stored} "
                   f"flows stored, signatures {', '.join(map(str, signatures))}"],
          retrieve="a signature's flows", credentials=f"--token {simulator.token}",
          selection=f"--signature-id {catalogue[0].signature_id}")


@simulate.command(name="cisco")
@listening_options
@click.option("--username", default="sdee-viewer", show_default=True, metavar="USER",
              help="The account to accept.")
@click.option("--password", metavar="PASS", help="Its password (default: a random one).")
@fault_option("cisco", "never-completes, unknown-id, 401, xml-error, hostile-entity")
@click.option("--complete-after", type=click.FloatRange(min=0), default=5, show_default=True,
              metavar="SECONDS", help="How long an IP log takes to complete once first asked "
                                      "for (0: complete from the start).")
@click.option("--legacy", is_flag=True,
              help="A 4.x sensor: SDEE at /cgi-bin/event-server only.")
@click.option("--subscription-only", is_flag=True,
              help="Refuse query mode: events only through subscriptions.")
@click.option("--cidee", type=click.Choice(["2006", "2004"]), default="2006", show_default=True,
              help="The cidee namespace of the documents (2004: older sensors).")
def cisco(host, port, cert_dir, username, password, faults, complete_after, legacy,
          subscription_only, cidee):
    """A Cisco IPS sensor look-alike (SDEE and the IP log server) over HTTPS."""
    from srp.simulators.cisco import CiscoSimulator, default_alerts

    catalogue = default_alerts()
    simulator = CiscoSimulator(catalogue, username=username, password=password, faults=faults,
                               complete_after=complete_after, legacy=legacy,
                               subscription_only=subscription_only, cidee_namespace=cidee,
                               host=host, port=port, cert_dir=cert_dir)

    alerts = [f"Alert:     {alert.event_id} ({alert.signature_description}), IP logs: "
              f"{', '.join(map(str, alert.ip_log_ids)) or 'none'}" for alert in catalogue]
    serve(simulator, faults, title="Cisco IPS",
          details=[f"Account:   {simulator.username} / {simulator.password}", *alerts],
          retrieve="an alert's IP logs",
          credentials=f"--username {simulator.username} --password {simulator.password}",
          selection=f"--event-id {catalogue[0].event_id}")


@simulate.command(name="logrhythm")
@listening_options
@click.option("--token", metavar="TOKEN", help="The API token to accept (default: a random one).")
@fault_option("logrhythm", "bad-token, no-case-rights, too-large, server-error, html-error, "
                           "slow-upload, evidence-failed, alarm-unknown")
@click.option("--complete-after", type=click.FloatRange(min=0), default=0.2, show_default=True,
              metavar="SECONDS", help="How long an uploaded file stays pending before it is "
                                      "processed.")
@click.option("--max-upload", type=click.IntRange(min=0), default=1 << 30, show_default=True,
              metavar="BYTES", help="The largest file upload accepted (413 above).")
def logrhythm(host, port, cert_dir, token, faults, complete_after, max_upload):
    """A LogRhythm case and alarm API look-alike over HTTPS, serving until interrupted."""
    from srp.simulators.logrhythm import LogRhythmSimulator, default_alarms

    alarms = default_alarms()
    simulator = LogRhythmSimulator(alarms, token=token, faults=faults,
                                   complete_after=complete_after, max_upload=max_upload,
                                   host=host, port=port, cert_dir=cert_dir)

    def example() -> str:
        return (f"srp-pcap netmon ... --lr-address {simulator.url} --lr-token "
                f"{simulator.token} --lr-ca-bundle {simulator.ca_bundle} --case auto "
                f"--alarm-id {alarms[0].alarm_id}")

    serve(simulator, faults, title="LogRhythm",
          details=[f"Token:     {simulator.token}",
                   *(f"Alarm:     {alarm.alarm_id} ({alarm.rule_name})" for alarm in alarms),
                   f"Uploads:   up to {max_upload} bytes, pending for {complete_after:g} s"],
          retrieve="an alarm's capture into its case (...: the vendor command's own "
                   "options)", example=example)
