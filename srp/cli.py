"""The srp-pcap command line.

Started once per alarm, so it imports only click here; each command imports what it needs.
Every failure ends as one line on stderr and an exit code from srp.errors, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import click

from srp import __version__
from srp.errors import EXIT_ERROR
from srp.retrieval import (DEFAULT_CONCURRENCY, DEFAULT_MAX_BYTES, DEFAULT_MAX_SESSIONS,
                           DEFAULT_MIN_FREE)

PROG = "srp-pcap"


def _fail(message: str, code: int) -> None:
    from srp.redaction import redact

    click.echo(redact(f"{PROG}: error: {message}"), err=True)
    context = click.get_current_context(silent=True)
    if context and isinstance(context.command, RetrievalCommand):
        # The Web Console shows stdout only: an analyst must see why nothing came.
        if context.params.get("as_json"):
            _echo_json_error(context.command.name, message)
        else:
            click.echo(redact(f"{PROG} {context.command.name}: ERROR: {message}"))
    sys.exit(code)


def _echo_json_error(vendor: str, message: str) -> None:
    """The --json object of a run that ended before it retrieved anything."""
    import json

    from srp.retrieval.outcome import Outcome

    outcome = Outcome(vendor=vendor, status="error", reason=message, errors=[message])
    click.echo(json.dumps(outcome.as_json()))


class RetrievalCommand(click.Command):
    """A vendor command: with --json, even a command line click rejects ends with the JSON
    object on stdout (an automation reading it must always find one)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, list(args), parent=parent, **extra)
        except click.UsageError as exc:
            if "--json" in args:
                _echo_json_error(self.name, exc.format_message())
            raise


def warn(message: str) -> None:
    from srp.redaction import redact

    click.echo(redact(f"{PROG}: warning: {message}"), err=True)


@contextlib.contextmanager
def reports_errors():
    """Turn the project's errors, and any other failure, into one line and an exit code
    (a block, or a command as its decorator)."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        from srp.errors import failure

        _fail(*failure(exc))


class _Program(click.Group):
    """The top command. Started as a program of its own (the console script, `python -m
    srp`, the SmartResponse script: no arguments given, so click reads sys.argv), it ends
    the process without tearing the interpreter down, as mypy's hard_exit does: freeing
    every module and object of requests, py7zr and the rest takes tens of milliseconds, on
    every alarm. Every file is closed and every thread joined by then; stdout and stderr are
    flushed here. Called with arguments (tests, the demo), it behaves as click does."""

    def main(self, args=None, *rest, standalone_mode=True, **extra):
        if args is not None or not standalone_mode:
            return super().main(args, *rest, standalone_mode=standalone_mode, **extra)
        try:
            super().main(args, *rest, **extra)
            code = 0
        except SystemExit as exit:
            code = _exit_status(exit.code)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):   # a closed pipe, no console at all
                if stream is not None:
                    stream.flush()
        os._exit(code)

    # `simulate` is for tests and demos: its module loads only when it is asked for.
    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), "simulate"])

    def get_command(self, ctx, name):
        if name == "simulate":
            missing = _missing_simulators()
            if missing:
                return _unavailable("simulate", missing)
            from srp.simulators.cli import simulate

            return simulate
        return super().get_command(ctx, name)


# The simulators and the demo are an optional extra, left out of the SmartResponse package.
SIMULATOR_MODULES = ("srp.simulators", "scapy", "cryptography", "python_multipart")


def _missing_simulators() -> list[str]:
    from importlib.util import find_spec

    return [name for name in SIMULATOR_MODULES if find_spec(name) is None]


def _simulators_missing_error(command: str, missing: list[str]):
    from srp.errors import SrpError

    return SrpError(f"'{PROG} {command}' needs the simulators, an optional extra that is not "
                    f"installed here ({', '.join(missing)} missing): pip install "
                    f"'srp-pcap[simulators]'")


def _unavailable(name: str, missing: list[str]) -> click.Command:
    """`name` where the simulators are not installed: it says so, and how to get them."""

    @reports_errors()
    def refuse(**_ignored):
        raise _simulators_missing_error(name, missing)

    return click.Command(name, callback=refuse, add_help_option=False,
                         help="Not installed: needs 'srp-pcap[simulators]'.",
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})


def _exit_status(code) -> int:
    """The status sys.exit(code) would end the process with."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@click.group(cls=_Program, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def main() -> None:
    """Retrieve the packet capture behind a SIEM alarm, merge it, and summarize it."""


@main.command(name="merge")
@click.option("-w", "output", required=True, metavar="OUT",
              help="Write the merged capture here (written whole or not at all).")
@click.option("-F", "format", default="pcapng", show_default=True,
              type=click.Choice(["pcapng", "pcap", "nsecpcap"]),
              help="Output format; pcap needs every input to share one link-layer type.")
@click.option("-s", "snaplen", type=click.IntRange(min=1), metavar="N",
              help="Cut every packet to at most N bytes.")
@click.option("-a", "concatenate", is_flag=True,
              help="Concatenate the inputs in the order given instead of merging by time.")
@click.option("-I", "interfaces", default="all", show_default=True,
              type=click.Choice(["all", "any", "none"]),
              help="pcapng interfaces: all = merge only if every file has the same ones; "
                   "any = merge equal ones; none = keep every file's own.")
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@reports_errors()
def merge_command(output, format, snaplen, concatenate, interfaces, inputs):
    """Merge captures into one, in mergecap's order and with mergecap's flags.

    Records are merged by timestamp (on equal times the file given last goes first; records
    inside a file keep their order). A damaged input is read up to the damage, with a
    warning; an input that is not a capture stops the merge before anything is written.
    """
    from srp.capture.merge import merge

    result = merge(inputs, output, format=format, snaplen=snaplen, concatenate=concatenate,
                   interfaces=interfaces)
    for message in result.warnings:
        warn(message)


def _trimmed(ctx, param, value):
    """LogRhythm passes values with stray spaces: trim every string option."""
    if isinstance(value, str):
        return value.strip()
    return value


# The options every vendor command shares (srp.retrieval.job.Settings), and --json.
RETRIEVAL_OPTIONS = [
    click.option("--pcap-dir", required=True, callback=_trimmed, metavar="DIR",
                 help="Folder for the merged capture and its manifest (created if missing)."),
    click.option("--alarm-id", callback=_trimmed, metavar="ID",
                 help="The LogRhythm alarm id: names the result and lets a repeated run "
                      "reuse it."),
    click.option("--max-sessions", type=click.IntRange(min=1), metavar="N",
                 default=DEFAULT_MAX_SESSIONS, show_default=True,
                 help="Fetch at most N sessions (an automatic action's guardrail)."),
    click.option("--max-bytes", default=DEFAULT_MAX_BYTES, show_default=True,
                 callback=_trimmed,
                 metavar="SIZE", help="Fetch at most SIZE bytes in all (K, M, G suffixes)."),
    click.option("--concurrency", type=click.IntRange(1, 64), default=DEFAULT_CONCURRENCY,
                 show_default=True, metavar="N", help="Downloads running at once."),
    click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True,
                 metavar="SECONDS", help="Give up on a request that is silent this long."),
    click.option("--ca-bundle", callback=_trimmed, metavar="PEM",
                 help="Trust this CA bundle for the appliance (wins over "
                      "REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE)."),
    click.option("--insecure", is_flag=True,
                 help="Do not verify the appliance's TLS certificate (warned about)."),
    click.option("--allowed-addresses", default="", callback=_trimmed, metavar="LIST",
                 help="Refuse an --address whose host is not in this comma-separated list "
                      "of host names, addresses and CIDR ranges (empty: any)."),
    click.option("--json", "as_json", is_flag=True,
                 help="Print one JSON object as the last line of stdout."),
    click.option("--force", is_flag=True,
                 help="Fetch again even if an earlier run for this alarm left a result."),
    click.option("--preview", is_flag=True,
                 help="Find the sessions and apply the caps, fetch nothing: say what a "
                      "retrieval would fetch (exit 0), or that nothing matched (exit 3)."),
    click.option("--min-free", default=DEFAULT_MIN_FREE, show_default=True,
                 callback=_trimmed, metavar="SIZE",
                 help="Refuse to start when the --pcap-dir disk has less free space."),
    click.option("--keep-days", type=click.IntRange(min=0), default=0, metavar="DAYS",
                 help="Before fetching, delete this tool's results in --pcap-dir older "
                      "than DAYS (0, the default: keep everything)."),
    click.option("--log-file", callback=_trimmed, metavar="PATH",
                 help="The rotating log (default: srp-pcap.log in --pcap-dir)."),
    click.option("-v", "--verbose", is_flag=True,
                 help="Log every request and session, not just one line per run."),
]


# The case step's options (srp.delivery.case), on every retrieval and on `attach`.
CASE_OPTIONS = [
    click.option("--case", callback=_trimmed, metavar="auto|new|ID",
                 help="Attach the capture to a LogRhythm case: auto (the alarm's own case, "
                      "else one of srp-pcap's own for the alarm), new (srp-pcap's own case "
                      "for the alarm), or a case number or GUID. Empty: no case."),
    click.option("--lr-address", callback=_trimmed, metavar="URL",
                 help="LogRhythm's API gateway: host, host:port or https://host[:port] "
                      "(default port 8501)."),
    click.option("--lr-token", envvar="SRP_LR_TOKEN", callback=_trimmed, metavar="TOKEN",
                 help="A LogRhythm API token whose user has case rights (or set "
                      "SRP_LR_TOKEN)."),
    click.option("--lr-ca-bundle", callback=_trimmed, metavar="PEM",
                 help="Trust this CA bundle for the LogRhythm API (wins over "
                      "REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE)."),
    click.option("--lr-insecure", is_flag=True,
                 help="Do not verify the LogRhythm API's TLS certificate (warned about)."),
    click.option("--case-max-bytes", default="100M", show_default=True, callback=_trimmed,
                 metavar="SIZE",
                 help="A larger capture is not uploaded: the case gets a note with its path "
                      "on this machine instead."),
]
CASE_OPTION_NAMES = ("case", "lr_address", "lr_token", "lr_ca_bundle", "lr_insecure",
                     "case_max_bytes")


def _case_step_maker(options: dict, timeout: float):
    """The retrieval core's make_delivery for the case options (None without --case); the
    case step's module loads only when a case is asked for."""
    from srp.redaction import register_secret

    case_options = {name: options.pop(name) for name in CASE_OPTION_NAMES}
    register_secret(case_options["lr_token"])   # given, even if unused, it is never shown
    if not case_options["case"]:
        return None
    from srp.delivery.case import case_step

    return functools.partial(case_step, {**case_options, "timeout": timeout})


def with_options(command, options: list):
    """`command` with click `options`, in their order in --help."""
    for option in reversed(options):
        command = option(command)
    return command


def vendor_command(name: str):
    """Declare the retrieval command `name`. The decorated function declares the vendor's
    own options and its help, and gives the vendor class (imported when the command runs),
    which builds itself from their values; srp.retrieval.job runs it with the shared
    options added here."""

    def declare(function):
        @functools.wraps(function)
        @reports_errors()
        def run(**options):
            import json
            from dataclasses import fields

            from srp.retrieval.job import Settings, run_retrieval

            as_json = options.pop("as_json")
            settings = Settings(**{field.name: options.pop(field.name)
                                   for field in fields(Settings)})
            make_delivery = _case_step_maker(options, settings.timeout)
            outcome = run_retrieval(function(), options, settings, make_delivery)
            click.echo(json.dumps(outcome.as_json()) if as_json else outcome.text())
            sys.exit(outcome.exit_code)

        # The vendor's options first in --help, then the shared ones, then the case's.
        run.__click_params__ = []
        run = with_options(run, RETRIEVAL_OPTIONS + CASE_OPTIONS)
        run.__click_params__ += getattr(function, "__click_params__", [])
        return main.command(name=name, cls=RetrievalCommand)(run)

    return declare


ALARM_DATE_HELP = "When the alarm fired (ISO 8601 or LogRhythm's date formats; UTC if no zone)"


def time_window_options(command):
    """--alarm-date, --before and --after: the time window a vendor command searches."""
    return with_options(command, [
        click.option("--alarm-date", callback=_trimmed, metavar="WHEN",
                     help=f"{ALARM_DATE_HELP}. Without it: the last --before minutes."),
        click.option("--before", type=click.FloatRange(min=0), default=60, show_default=True,
                     metavar="MIN", help="Minutes before the alarm to search."),
        click.option("--after", type=click.FloatRange(min=0), default=15, show_default=True,
                     metavar="MIN", help="Minutes after the alarm to search."),
    ])


@vendor_command("netmon")
@click.option("--address", required=True, callback=_trimmed, metavar="URL",
              help="NetMon appliance: host, host:port or https://host[:port].")
@click.option("--api-key", envvar="SRP_NETMON_API_KEY", required=True, callback=_trimmed,
              metavar="KEY", help="NetMon API token (or set SRP_NETMON_API_KEY).")
@click.option("--query", required=True, callback=_trimmed, metavar="TEXT",
              help="The alarm field's value (a domain, a host name), matched literally.")
@time_window_options
@click.option("--search-path", callback=_trimmed, metavar="PATH",
              help="The appliance's session-search route, if it differs from the assumed "
                   "/api/sessions/search.")
def netmon_command():
    """Retrieve and merge the NetMon sessions that match an alarm field."""
    from srp.vendors.netmon import NetMon

    return NetMon


@vendor_command("stamus")
@click.option("--address", required=True, callback=_trimmed, metavar="URL",
              help="Stamus Central Server: host, host:port or https://host[:port].")
@click.option("--token", envvar="SRP_STAMUS_TOKEN", required=True, callback=_trimmed,
              metavar="TOKEN", help="Stamus API token (or set SRP_STAMUS_TOKEN).")
@click.option("--signature-id", required=True, callback=_trimmed, metavar="N",
              help="The alert's signature id (a whole number).")
@click.option("--flow-id", callback=_trimmed, metavar="N",
              help="The alert's flow id (a whole number). Without it: every alerting flow of "
                   "the signature in the time window.")
@time_window_options
@click.option("--probe", callback=_trimmed, metavar="NAME",
              help="The probe holding the packets (default: each alert's host).")
@click.option("--extract-timeout", type=click.FloatRange(min=1), default=600,
              show_default=True, metavar="SECONDS",
              help="How long one extraction on the probe is waited for.")
def stamus_command():
    """Retrieve and merge the conditional pcap of a Stamus signature's alerting flows."""
    from srp.vendors.stamus import Stamus

    return Stamus


@vendor_command("cisco")
@click.option("--address", required=True, callback=_trimmed, metavar="URL",
              help="Cisco IPS sensor: host, host:port or https://host[:port].")
@click.option("--username", required=True, callback=_trimmed, metavar="USER",
              help="A sensor account allowed to read events and IP logs.")
@click.option("--password", envvar="SRP_CISCO_PASSWORD", required=True, callback=_trimmed,
              metavar="PASS", help="Its password (or set SRP_CISCO_PASSWORD).")
@click.option("--event-id", callback=_trimmed, metavar="N",
              help="The alert's eventId: the alert is found over SDEE and its IP logs fetched.")
@click.option("--iplog-id", callback=_trimmed, metavar="N",
              help="Fetch this IP log directly, without looking up an alert.")
@click.option("--alarm-date", callback=_trimmed, metavar="WHEN",
              help=f"{ALARM_DATE_HELP}: the alert is looked for in the 24 hours before it. "
                   f"Without it: the last 24 hours.")
@click.option("--wait", type=click.FloatRange(min=0), default=300, show_default=True,
              metavar="SECONDS",
              help="How long, in all, to wait for IP logs the sensor is still writing.")
@click.option("--only-participants", is_flag=True,
              help="Keep only the packets between the alert's attacker and target (needs "
                   "--event-id).")
@click.option("--trigger-only", is_flag=True,
              help="Take the verbose alert's trigger packet alone: no IP log is asked for "
                   "or waited for (needs --event-id).")
def cisco_command():
    """Retrieve and merge the IP logs of a Cisco IPS alert (or one IP log by its id)."""
    from srp.vendors.cisco import Cisco

    return Cisco


@main.command(name="attach")
@click.argument("capture", metavar="CAPTURE")
@click.option("--alarm-id", callback=_trimmed, metavar="ID",
              help="The LogRhythm alarm (default: the one the capture's manifest names).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True,
              metavar="SECONDS", help="Give up on a request that is silent this long.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object as the last line of stdout.")
@functools.partial(with_options, options=CASE_OPTIONS)
@reports_errors()
def attach_command(capture, alarm_id, timeout, as_json, **options):
    """Attach a capture already on disk to a LogRhythm case, as a retrieval's --case does.

    The capture's manifest, when it lies beside it (NAME.json), gives the alarm and the
    summary, and records what was done. Exit 0 when the capture (or, over
    --case-max-bytes, a note with its path) is in the case, 1 when it could not be put
    there, 2 for a bad command line.
    """
    import json
    from pathlib import Path

    from srp.retrieval.job import attach_capture

    from srp.errors import UsageError

    if not options["case"]:
        raise UsageError("--case is required: auto, new, a case number or a GUID")
    make_delivery = _case_step_maker(options, timeout)
    outcome = attach_capture(Path(capture), make_delivery, alarm_id)
    click.echo(json.dumps(outcome.as_json()) if as_json else outcome.text())
    sys.exit(outcome.exit_code)



@main.command(name="summary")
@click.argument("capture", metavar="FILE")
@click.option("--json", "json_output", is_flag=True,
              help="Print the summary as one JSON object instead of text.")
@reports_errors()
def summary_command(capture, json_output):
    """Summarize a capture: its file, packets and time span, its largest conversations, and
    the names its traffic carries (DNS queries, HTTP requests, TLS server names).

    A damaged capture is read up to its damage, with a warning; a file that is missing or
    not a capture is an error (exit 1).
    """
    from srp.summary import render_text, summarize

    summary = summarize(capture)
    if json_output:
        import json

        click.echo(json.dumps(summary.as_json()))
    else:
        click.echo(render_text(summary))


@main.command(name="demo")
@click.option("--pcap-dir", default="srp-pcap-demo", show_default=True, callback=_trimmed,
              metavar="DIR", help="Folder for the demo's captures, manifests and log.")
@reports_errors()
def demo_command(pcap_dir):
    """Run NetMon, Stamus and Cisco IPS retrievals end to end against simulators on this
    machine, print their summaries, and keep the captures."""
    from pathlib import Path

    missing = _missing_simulators()
    if missing:
        raise _simulators_missing_error("demo", missing)
    from srp.demo import run_demo

    def run_command(args: list[str]) -> int:
        try:
            main.main(args=args, prog_name=PROG, standalone_mode=False)
        except SystemExit as exit:
            return exit.code if isinstance(exit.code, int) else EXIT_ERROR
        return 0

    sys.exit(run_demo(Path(pcap_dir), click.echo, run_command))

