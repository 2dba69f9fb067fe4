"""The capture into the alarm's LogRhythm case, where the analyst works.

`--case auto` takes the alarm's own case (the newest of its associated cases), else
srp-pcap's own case for the alarm; `new` always takes srp-pcap's own case (never the
alarm's), made on the first run (named after the alarm, holding it as evidence, externalId
`srp-pcap:<alarm id>`) and found again by that id on later runs; a number or GUID names the
case. The capture goes in as file evidence, streamed, with a note naming its SHA-256; a
capture over `--case-max-bytes`, or one the server refuses as too large, leaves a note with
its place on the Event Manager instead. A capture whose SHA-256 the case already holds is
not added again. The alarm gets a comment naming the case.

A failure never raises: the step's result says what went wrong, and the retrieval, whose
capture stays on disk, ends partial.
"""

from __future__ import annotations

import time
from pathlib import Path

from srp.delivery.logrhythm import (DEFAULT_PORT, FAILED, PENDING, Case, Evidence,
                                    LogRhythmApi, check_alarm_id, check_case_reference,
                                    check_token)
from srp.errors import SrpError, UsageError
from srp.oplog import log
from srp.redaction import register_secret
from srp.retrieval.http import HttpClient, HttpError
from srp.retrieval.inputs import parse_address, parse_size
from srp.retrieval.outcome import CaseResult, Outcome
from srp.summary.render import human_size

DEFAULT_CASE_MAX_BYTES = "100M"
CASE_PRIORITY = 3                   # of 1 (highest) to 5: a capture is evidence, not a verdict
EXTERNAL_ID = "srp-pcap:{alarm}"
SETTLE_SECONDS = 30.0               # how long a new file's evidence is watched while pending
SUMMARY_LINES = 14                  # of the retrieval's summary, in the evidence note
TOO_LARGE_WORDS = ("too large", "too big", "size", "limit", "exceed")
LR_TLS_OPTIONS = ("--lr-ca-bundle", "--lr-insecure")


def case_step(options: dict, alarm_id: str | None) -> CaseStep | None:
    """The case step the options ask for (None without --case), every option checked
    before anything is sent."""
    return CaseStep(**options, alarm_id=alarm_id) if options.get("case") else None


class CaseStep:
    """Called with a retrieval's outcome; returns what it did as a CaseResult."""

    def __init__(self, *, case: str, lr_address: str | None, lr_token: str | None,
                 lr_ca_bundle: str | None = None, lr_insecure: bool = False,
                 case_max_bytes: str = DEFAULT_CASE_MAX_BYTES, alarm_id: str | None = None,
                 timeout: float = 60.0):
        register_secret(lr_token)          # before anything could quote it
        if not lr_address or not lr_token:
            raise UsageError("--case needs --lr-address and --lr-token (or SRP_LR_TOKEN): "
                             "LogRhythm's API gateway and an API token")
        self.token = check_token(lr_token)
        self.max_bytes = parse_size(case_max_bytes, "--case-max-bytes")
        self.mode = case.lower() if case.lower() in ("auto", "new") else "id"
        self.reference = check_case_reference(case) if self.mode == "id" else None
        if self.mode != "id" and not alarm_id:
            raise UsageError(f"--case {self.mode} needs --alarm-id: the case is the alarm's")
        self.alarm_id = check_alarm_id(alarm_id) if alarm_id else None
        # Made now, so that its TLS options are checked before the retrieval starts; it
        # connects only when the step runs.
        self.client = HttpClient(
            parse_address(lr_address, "--lr-address", default_port=DEFAULT_PORT),
            ca_bundle=Path(lr_ca_bundle) if lr_ca_bundle else None, insecure=lr_insecure,
            timeout=timeout, pool_size=1, tls_options=LR_TLS_OPTIONS)

    def __call__(self, outcome: Outcome) -> CaseResult:
        if not outcome.pcap:
            self.client.close()
            return CaseResult("skipped", "no capture to attach")
        attempt = _Attempt(LogRhythmApi(self.client, self.token), self, outcome)
        try:
            result = attempt.run()
        except SrpError as exc:
            result = attempt.failed(str(exc))
        finally:
            self.client.close()
        log.info("case step: status=%s case=%s evidence=%s reason=%r", result.status,
                 result.number if result.number is not None else "-",
                 ",".join(map(str, result.evidence)) or "-", result.reason)
        return result


class _Attempt:
    """One case step: the case found or made, the capture added once, the alarm told."""

    def __init__(self, api: LogRhythmApi, step: CaseStep, outcome: Outcome):
        self.api, self.step, self.outcome = api, step, outcome
        self.case: Case | None = None
        self.warnings: list[str] = []
        self.capture = Path(outcome.pcap)
        self.marker = f"SHA-256: {outcome.sha256}"   # how the case's evidence names it

    def run(self) -> CaseResult:
        self.case = self._find_case()
        mine = [item for item in self.api.evidence(self.case)
                if item.status != FAILED and self.marker in item.text]
        already = [item.number for item in mine if item.type == "file"]
        if already:
            return self._result("attached", f"already in the case as evidence {already[0]}")
        if self.outcome.bytes > self.step.max_bytes:
            return self._noted(f"it is over the case limit of "
                               f"{human_size(self.step.max_bytes)} (--case-max-bytes)", mine)
        try:
            evidence = self.api.add_file(self.case, self.capture, self.capture.name,
                                         self._note(f"Packet capture of {self._alarm()}, "
                                                    f"retrieved by srp-pcap."))
        except HttpError as exc:
            if not _too_large(exc):
                raise
            return self._noted(f"LogRhythm refused the upload as too large ({exc.reason})",
                               mine)
        evidence = self._settled(evidence)
        if evidence.status == FAILED:
            return self.failed(f"LogRhythm could not process the uploaded capture (evidence "
                               f"{evidence.number}: {evidence.status_message or 'failed'})")
        if evidence.status == PENDING:
            self.warnings.append(f"case {self.case.number}: evidence {evidence.number} is "
                                 f"still being processed by LogRhythm")
        self._comment(f"is in case {self.case.number} \"{self.case.name}\" as evidence "
                      f"{evidence.number}")
        return self._result("attached", f"capture attached as evidence {evidence.number}",
                            [evidence.number])

    def failed(self, reason: str) -> CaseResult:
        return self._result("failed", reason)

    def _result(self, status: str, reason: str, evidence: list[int] = ()) -> CaseResult:
        case = self.case
        return CaseResult(status, reason, case.id if case else None,
                          case.number if case else None, case.name if case else None,
                          list(evidence), self.warnings)

    # --- the case ---

    def _find_case(self) -> Case:
        if self.step.mode == "id":
            return self.api.case(self.step.reference)
        alarm = self.api.alarm(self.step.alarm_id)
        if self.step.mode == "auto":
            cases = [case for guid in alarm.cases if (case := self._existing(guid))]
            if cases:
                return _newest(cases)
        external_id = EXTERNAL_ID.format(alarm=alarm.id)
        own = self.api.cases_with_external_id(external_id)
        if own:
            return _newest(own)
        rule = alarm.rule_name or "LogRhythm alarm"
        case = self.api.create_case(
            f"{rule} (alarm {alarm.id})",
            f"Packet capture of alarm {alarm.id} ({rule}), retrieved by srp-pcap.",
            external_id, CASE_PRIORITY)
        try:
            self.api.add_alarm(case, alarm.id)
        except SrpError as exc:   # the case still takes the capture
            self.warnings.append(f"the new case {case.number} does not hold the alarm: {exc}")
        return case

    def _existing(self, guid: str) -> Case | None:
        """One of the alarm's cases; None if it has been deleted since."""
        try:
            return self.api.case(guid)
        except HttpError as exc:
            if exc.status != 404:
                raise
            return None

    # --- the evidence ---

    def _noted(self, why: str, mine: list[Evidence]) -> CaseResult:
        """A note with the capture's place on the Event Manager, instead of the file."""
        self.warnings.append(f"the capture was not uploaded to case {self.case.number}: "
                             f"{why}; a note with its path is there instead")
        noted = [item.number for item in mine if item.type == "note"]
        if noted:
            return self._result("noted", f"{why}; noted already as evidence {noted[0]}")
        note = self.api.add_note(self.case, self._note(
            f"Packet capture of {self._alarm()}, retrieved by srp-pcap, not uploaded: {why}. "
            f"It is on the Event Manager at {self.outcome.pcap}"))
        self._comment(f"is too large for the case; case {self.case.number} "
                      f"\"{self.case.name}\" has a note with its path on the Event Manager")
        return self._result("noted", f"{why}; a note with its path is evidence {note.number}",
                            [note.number])

    def _note(self, first_line: str) -> str:
        outcome = self.outcome
        manifest = Path(outcome.manifest).name if outcome.manifest else "none"
        summary = outcome.text().splitlines()[:SUMMARY_LINES]
        return "\n".join([
            first_line,
            f"File: {self.capture.name} ({outcome.bytes} bytes)",
            self.marker,
            f"Packets: {outcome.packets}, {outcome.first} to {outcome.last}",
            f"Manifest: {manifest}",
            "", *summary])

    def _settled(self, evidence: Evidence) -> Evidence:
        """The file's evidence once LogRhythm has processed it (or SETTLE_SECONDS on)."""
        deadline, pause = time.monotonic() + SETTLE_SECONDS, 0.2
        while evidence.status == PENDING and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
            evidence = self.api.evidence_record(self.case, evidence.number)
        return evidence

    def _comment(self, where: str) -> None:
        """Tell the alarm where its packets are; a comment that fails is a warning."""
        if self.step.alarm_id is None:
            return
        outcome = self.outcome
        text = (f"srp-pcap: the packet capture of this alarm ({self.capture.name}, "
                f"{outcome.packets} packets, {human_size(outcome.bytes)}, SHA-256 "
                f"{outcome.sha256}) {where}.")
        try:
            self.api.comment(self.step.alarm_id, text)
        except SrpError as exc:
            self.warnings.append(f"could not comment on alarm {self.step.alarm_id}: {exc}")

    def _alarm(self) -> str:
        return f"alarm {self.step.alarm_id}" if self.step.alarm_id else "a capture"


def _newest(cases: list[Case]) -> Case:
    return max(cases, key=lambda case: (case.created, case.number))


def _too_large(exc: HttpError) -> bool:
    """A 413, or a 400 whose words say the file is too large."""
    words = exc.reason.lower()
    return exc.status == 413 or (exc.status == 400
                                 and any(word in words for word in TOO_LARGE_WORDS))
