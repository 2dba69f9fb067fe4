"""One retrieval from a command's options to its outcome, the same for every vendor: the
settings every vendor command shares, the pre-flight (secrets masked, sizes read, the
appliance's client, the vendor built from its own options, the results folder, the sweep,
the free-space floor), the retrieval itself, closing the connections, and the run's line
in the operations log however it ends."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from srp import oplog
from srp.errors import failure
from srp.redaction import redact, register_secret
from srp.retrieval.http import HttpClient
from srp.retrieval.inputs import parse_address, parse_size
from srp.retrieval.outcome import Outcome
from srp.retrieval.run import Limits, retrieve
from srp.retrieval.store import remove_old_results, require_free_space
from srp.retrieval.vendor import Vendor


@dataclass(frozen=True)
class Settings:
    """The options every vendor command shares, as the command line gave them."""

    pcap_dir: str
    alarm_id: str | None
    max_sessions: int
    max_bytes: str
    concurrency: int
    timeout: float
    ca_bundle: str | None
    insecure: bool
    force: bool
    min_free: str
    keep_days: int | None
    log_file: str | None
    verbose: bool


def run_retrieval(vendor_class: type[Vendor], options: dict, settings: Settings) -> Outcome:
    """Retrieve with `vendor_class`, built from its own `options` (raw option values, among
    them the appliance's `address`). Raises the project's errors for what stops the run
    before it has an outcome; the log has its line either way."""
    path = (Path(settings.log_file) if settings.log_file
            else Path(settings.pcap_dir) / oplog.LOG_NAME)
    problem = oplog.open_log(path, settings.verbose)
    if problem:
        print(redact(f"srp-pcap: warning: {problem}; going on without it"), file=sys.stderr)
    started, outcome = time.monotonic(), None
    try:
        outcome = _run(vendor_class, dict(options), settings)
        for message in outcome.warnings:
            oplog.log.debug("warning: %s", message)
        exit_code, reason = outcome.exit_code, outcome.reason
        return outcome
    except BaseException as exc:
        reason, exit_code = failure(exc)
        raise
    finally:
        oplog.log.info(oplog.run_line(
            vendor_class.name, settings.alarm_id, exit_code,
            outcome.status if outcome else "error", reason, time.monotonic() - started,
            outcome.bytes if outcome else 0, outcome.pcap if outcome else None))
        oplog.close_log()


def _run(vendor_class: type[Vendor], options: dict, settings: Settings) -> Outcome:
    for name in vendor_class.secret_options:   # before anything could quote one
        register_secret(options.get(name))
    limits = Limits(max_sessions=settings.max_sessions,
                    max_bytes=parse_size(settings.max_bytes, "--max-bytes"),
                    concurrency=settings.concurrency)
    min_free = parse_size(settings.min_free, "--min-free")
    client = HttpClient(parse_address(options.pop("address")),
                        ca_bundle=Path(settings.ca_bundle) if settings.ca_bundle else None,
                        insecure=settings.insecure, timeout=settings.timeout,
                        pool_size=settings.concurrency)
    try:
        vendor = vendor_class(client, **options)
    except BaseException:
        client.close()
        raise
    try:
        pcap_dir = Path(settings.pcap_dir)
        pcap_dir.mkdir(parents=True, exist_ok=True)
        if settings.keep_days:
            removed = remove_old_results(pcap_dir, settings.keep_days)
            oplog.log.debug("removed %d results older than %d days", removed,
                            settings.keep_days)
        require_free_space(pcap_dir, min_free)
        return retrieve(vendor, pcap_dir, settings.alarm_id, limits, force=settings.force)
    finally:
        vendor.close()
