"""One retrieval from a command's options to its outcome, the same for every vendor: the
settings every vendor command shares, the pre-flight (secrets masked, the appliance's
address held to --allowed-addresses, sizes read, the appliance's client, the vendor built
from its own options, the results folder, the sweep, the free-space floor), the retrieval
itself, closing the connections, and the run's line in the operations log however it
ends."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from srp import oplog
from srp.errors import failure
from srp.redaction import redact, register_secret
from srp.retrieval.http import HttpClient
from srp.retrieval.inputs import AllowedAddresses, parse_address, parse_size
from srp.retrieval.outcome import Outcome
from srp.retrieval.run import (LOCK_WAIT, Deliver, Limits, capture_outcome, deliver_capture,
                               preview, retrieve, stored_outcome)
from srp.retrieval.store import (ResultStore, manifest_beside, remove_old_results,
                                 require_free_space)
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
    preview: bool = False
    allowed_addresses: str = ""   # empty: any appliance address


# Builds the delivery step for an alarm id, its options checked (srp.delivery.case_step with
# the command's case options); None: no delivery.
MakeDelivery = Callable[[Optional[str]], Optional[Deliver]]


def run_retrieval(vendor_class: type[Vendor], options: dict, settings: Settings,
                  make_delivery: MakeDelivery | None = None) -> Outcome:
    """Retrieve with `vendor_class`, built from its own `options` (raw option values, among
    them the appliance's `address`), and hand the capture to the delivery `make_delivery`
    builds. Raises the project's errors for what stops the run before it has an outcome;
    the log has its line either way."""
    path = (Path(settings.log_file) if settings.log_file
            else Path(settings.pcap_dir) / oplog.LOG_NAME)
    problem = oplog.open_log(path, settings.verbose)
    if problem:
        print(redact(f"srp-pcap: warning: {problem}; going on without it"), file=sys.stderr)
    started, outcome = time.monotonic(), None
    try:
        outcome = _run(vendor_class, dict(options), settings, make_delivery)
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
            _logged_status(outcome), reason, time.monotonic() - started,
            outcome.bytes if outcome else 0, outcome.pcap if outcome else None))
        oplog.close_log()


def _logged_status(outcome: Outcome | None) -> str:
    if outcome is None:
        return "error"
    return f"preview-{outcome.status}" if outcome.preview else outcome.status


def _run(vendor_class: type[Vendor], options: dict, settings: Settings,
         make_delivery: MakeDelivery | None) -> Outcome:
    for name in vendor_class.secret_options:   # before anything could quote one
        register_secret(options.get(name))
    # An alarm field may give the address: an unlisted host never sees the credentials.
    address = parse_address(options.pop("address"))
    AllowedAddresses.from_option(settings.allowed_addresses).check(address)
    # A preview fetches nothing, so it delivers nothing.
    deliver = (make_delivery(settings.alarm_id) if make_delivery and not settings.preview
               else None)
    limits = Limits(max_sessions=settings.max_sessions,
                    max_bytes=parse_size(settings.max_bytes, "--max-bytes"),
                    concurrency=settings.concurrency)
    min_free = parse_size(settings.min_free, "--min-free")
    client = HttpClient(address,
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
        if settings.preview:   # it changes nothing in the folder: no sweep either
            return preview(vendor, pcap_dir, settings.alarm_id, limits, force=settings.force)
        if settings.keep_days:
            removed = remove_old_results(pcap_dir, settings.keep_days)
            oplog.log.debug("removed %d results older than %d days", removed,
                            settings.keep_days)
        require_free_space(pcap_dir, min_free)
        return retrieve(vendor, pcap_dir, settings.alarm_id, limits, force=settings.force,
                        deliver=deliver)
    finally:
        vendor.close()


def attach_capture(capture: Path, make_delivery: MakeDelivery, alarm_id: str | None) -> Outcome:
    """The delivery by hand, for a capture already on disk. Its manifest, when it lies
    beside it, gives the alarm (unless `alarm_id` does) and the summary, and records what
    the delivery did; the delivery then holds the lock a retrieval of that alarm holds."""
    manifest = manifest_beside(capture)
    if manifest is None:
        outcome = capture_outcome("attach", capture, "")
        lock = contextlib.nullcontext()
    else:
        outcome = stored_outcome("attach", manifest, "")
        request = manifest["request"]
        alarm_id = alarm_id or request.get("alarm_id")
        lock = ResultStore(capture.parent, request.get("vendor"), request.get("alarm_id"),
                           request).lock(LOCK_WAIT)
    outcome.reused = False
    deliver = make_delivery(alarm_id)
    with lock:
        deliver_capture(deliver, outcome)
    outcome.status = "error" if outcome.case.status == "failed" else "ok"
    outcome.reason = outcome.case.reason
    return outcome
