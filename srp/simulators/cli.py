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


def fault_list(module: str):
    """A click callback reading --fault NAME or NAME:N (the first N requests it applies to),
    the names checked against the FAULTS of srp.simulators.<module>."""

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

    return parse


def serve(simulator, describe) -> None:
    """Start `simulator`, print `describe()`'s lines, and serve until Ctrl-C or SIGTERM."""
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
    try:
        for line in describe():
            click.echo(line)
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
@click.option("--fault", "faults", multiple=True, callback=fault_list("netmon"), metavar="NAME[:N]",
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

    def describe():
        captured = sum(spec.captured for spec in catalogue)
        domains = sorted({spec.domain for spec in catalogue})
        yield f"NetMon simulator listening on {simulator.url}"
        yield f"CA bundle: {simulator.ca_bundle}"
        yield f"API key:   {simulator.api_key}"
        yield (f"Sessions:  {len(catalogue)} over the last hour, {captured} captured, "
               f"domains {', '.join(domains)}")
        if faults:
            yield f"Faults:    {', '.join(fault.name for fault in faults)}"
        yield "Retrieve them with:"
        yield (f"  srp-pcap netmon --address {simulator.url} --api-key {simulator.api_key} "
               f"--ca-bundle {simulator.ca_bundle} --query {domains[0]} --pcap-dir ./pcaps")

    serve(simulator, describe)
