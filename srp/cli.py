"""The srp-pcap command line.

Started once per alarm, so it imports only click here; each command imports what it needs.
Every failure ends as one line on stderr and an exit code from srp.errors, never a traceback.
"""

from __future__ import annotations

import functools
import sys

import click

from srp import __version__
from srp.errors import EXIT_ERROR, SrpError

PROG = "srp-pcap"


def _fail(message: str, code: int) -> None:
    click.echo(f"{PROG}: error: {message}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"{PROG}: warning: {message}", err=True)


def reports_errors(command):
    """Turn the project's errors, and any other failure, into one line and an exit code."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SrpError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}", EXIT_ERROR)
        except MemoryError:
            _fail("out of memory", EXIT_ERROR)
        except Exception as exc:  # a bug of ours: still one line, never a traceback
            _fail(f"internal error ({type(exc).__name__}): {exc}", EXIT_ERROR)

    return run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@reports_errors
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
