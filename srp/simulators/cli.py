"""`srp-pcap simulate ...`: run a simulator in the foreground until Ctrl-C.

Only click is imported here; a simulator's modules load when its command runs.
"""

from __future__ import annotations

import signal
import threading

import click


@click.group(name="simulate")
def simulate() -> None:
    """Run a look-alike of a capture appliance on this machine, for tests and demos."""


def _netmon_faults(ctx, param, values):
    """--fault NAME or NAME:N (the first N requests it applies to)."""
    from srp.simulators.faults import Fault
    from srp.simulators.netmon import FAULTS

    faults = []
    for value in values:
        name, _, count = value.partition(":")
        if name not in FAULTS:
            raise click.BadParameter(f"{name!r} is not one of {', '.join(FAULTS)}")
        if count and not count.isdigit():
            raise click.BadParameter(f"{value!r}: the count after ':' must be a whole number")
        faults.append(Fault(name, first=int(count) if count else None))
    return faults


@simulate.command(name="netmon")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the certificate names it and the loopback names).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--cert-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write the certificate and key here (default: a temporary folder removed "
                   "at exit).")
@click.option("--api-key", metavar="KEY", help="The API key to accept (default: a random one).")
@click.option("--fault", "faults", multiple=True, callback=_netmon_faults, metavar="NAME[:N]",
              # The names are netmon.FAULTS, listed here to keep `--help` import-free.
              help="Switch a fault on, for every request or the first N: 503, reset, 401, "
                   "html, truncated, slow, not-7z-garbage. Repeatable.")
@click.option("--sessions", type=click.IntRange(1, 100_000), default=12, show_default=True,
              metavar="N", help="Sessions in the catalogue (over the last hour, 3 domains, "
                                "every sixth not captured).")
def netmon(host, port, cert_dir, api_key, faults, sessions):
    """A LogRhythm NetMon look-alike over HTTPS, serving until interrupted."""
    from srp.simulators.netmon import NetMonSimulator, default_sessions

    catalogue = default_sessions(sessions)
    simulator = NetMonSimulator(catalogue, api_key=api_key, faults=faults, host=host,
                                port=port, cert_dir=cert_dir)
    try:
        simulator.start()
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else f"{host}:{port}: "
        raise click.ClickException(f"cannot start the simulator: {where}{exc.strerror or exc}")
    stopped = threading.Event()
    # Ctrl-C and SIGTERM both end it cleanly (the temporary files go too), also when the
    # shell started it with SIGINT ignored, as it does for a background job.
    previous = {number: signal.signal(number, lambda *_: stopped.set())
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        captured = sum(spec.captured for spec in catalogue)
        domains = sorted({spec.domain for spec in catalogue})
        click.echo(f"NetMon simulator listening on {simulator.url}")
        click.echo(f"CA bundle: {simulator.ca_bundle}")
        click.echo(f"API key:   {simulator.api_key}")
        click.echo(f"Sessions:  {len(catalogue)} over the last hour, {captured} captured, "
                   f"domains {', '.join(domains)}")
        if faults:
            click.echo(f"Faults:    {', '.join(fault.name for fault in faults)}")
        click.echo("Retrieve them with:")
        click.echo(f"  srp-pcap netmon --address {simulator.url} --api-key {simulator.api_key} "
                   f"--ca-bundle {simulator.ca_bundle} --query {domains[0]} --pcap-dir ./pcaps")
        click.echo("Press Ctrl-C to stop.")
        while not stopped.wait(0.5):
            pass
    finally:
        simulator.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    click.echo("Stopped.")
