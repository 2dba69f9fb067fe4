"""Reading what LogRhythm passes on the command line: appliance addresses, alarm dates,
sizes and ids. Values arrive with stray spaces, and alarm fields are attacker-influenced:
everything here either yields a clean value or raises UsageError with one line."""

from __future__ import annotations

import email.utils
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from srp.errors import UsageError
from srp.timestamps import rfc3339

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_address(text: str, option: str = "--address", default_port: int | None = None
                  ) -> str:
    """`host`, `host:port`, `[v6]:port` or `https://host[:port]` as an https base URL (with
    `default_port` when it names none)."""
    text = text.strip()
    if not text:
        raise UsageError(f"{option} is empty")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"{option} is not a host, host:port or https:// URL") from None
    if parts.scheme.lower() != "https":
        raise UsageError(f"{option} must use https (the appliance's API is served over TLS)")
    if parts.username or parts.password:
        raise UsageError(f"{option} must not carry credentials; use the key/password options")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise UsageError(f"{option} must be just a host and port, without a path")
    if port == 0:
        raise UsageError(f"{option} has port 0")
    host = parts.hostname or ""
    if not _valid_host(host):
        raise UsageError(f"{option} has an invalid host name")
    if ":" in host:
        host = f"[{host}]"
    port = port or default_port
    return f"https://{host}" + (f":{port}" if port else "")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(host) and len(host) <= 253 and all(
            _HOST_LABEL.match(label) for label in host.rstrip(".").split("."))


# .NET format strings LogRhythm admins put in an AlarmDate TimeFormat, as strptime formats;
# ISO 8601 (any precision, any offset) and epoch numbers are handled before these.
_DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",      # M/d/yyyy h:mm:ss tt (LogRhythm's US display)
    "%m/%d/%Y %H:%M:%S",         # MM/dd/yyyy HH:mm:ss
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d-%b-%Y %H:%M:%S",         # dd-MMM-yyyy HH:mm:ss
    "%b %d %Y %H:%M:%S",
)


def parse_alarm_date(text: str) -> datetime:
    """An alarm date as an aware UTC datetime; a date without a zone is taken as UTC."""
    value = text.strip()
    if not value:
        raise UsageError("--alarm-date is empty")
    if re.fullmatch(r"\d{9,13}(\.\d+)?", value):
        seconds = float(value)
        return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, timezone.utc)
    parsed = _parse_iso(value)
    if parsed is None:
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        try:
            parsed = email.utils.parsedate_to_datetime(value)  # .NET "r": RFC 1123
        except (TypeError, ValueError):
            raise UsageError(f"--alarm-date {value!r} is not a date this tool reads "
                             f"(ISO 8601, e.g. 2026-11-22T10:04:54Z)") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _parse_iso(value: str) -> datetime | None:
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?",
        value, re.IGNORECASE)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    # .NET writes up to seven fraction digits; Python takes six.
    text = f"{day}T{clock}" + (f".{(fraction + '000000')[:6]}" if fraction else "")
    if zone:
        zone = "+00:00" if zone.upper() == "Z" else zone
        text += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class TimeWindow:
    start: datetime
    end: datetime

    @classmethod
    def around(cls, alarm_date: datetime | None, before_minutes: float,
               after_minutes: float, now: datetime | None = None) -> "TimeWindow":
        """The alarm time minus `before` to plus `after`; without a date, the last `before`
        minutes up to now."""
        if before_minutes < 0 or after_minutes < 0:
            raise UsageError("--before and --after are minutes and cannot be negative")
        if alarm_date is None:
            end = now or datetime.now(timezone.utc)
            return cls(end - timedelta(minutes=before_minutes), end)
        return cls(alarm_date - timedelta(minutes=before_minutes),
                   alarm_date + timedelta(minutes=after_minutes))

    @classmethod
    def from_options(cls, alarm_date: str | None, before_minutes: float,
                     after_minutes: float) -> "TimeWindow":
        """The window of --alarm-date (empty or absent: none), --before and --after."""
        return cls.around(parse_alarm_date(alarm_date) if alarm_date else None,
                          before_minutes, after_minutes)

    def as_dict(self) -> dict:
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}

    def as_epoch_ms(self) -> tuple[int, int]:
        """(start, end) in milliseconds since the epoch, exactly (no float rounding)."""
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        one_ms = timedelta(milliseconds=1)
        return (self.start - epoch) // one_ms, (self.end - epoch) // one_ms


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def parse_size(text: str, option: str) -> int:
    """A byte count such as 500000, 200M or 2GB (K, M, G, T are powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"{option} {text.strip()!r} is not a size such as 500M or 2G")
    number, unit = match.groups()
    size = int(float(number) * 1024 ** " KMGT".index(unit.upper() or " "))
    if size <= 0:
        raise UsageError(f"{option} must be more than zero bytes")
    return size


def parse_integer_id(text: str, option: str) -> int:
    """An id the appliance knows as a non-negative integer; anything else never leaves."""
    value = text.strip()
    if not re.fullmatch(r"\d{1,20}", value):
        raise UsageError(f"{option} must be a whole number")
    return int(value)


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# An IPv4 address wrapped in IPv6 (::ffff:10.0.0.1) reaches the IPv4 host.
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_LISTED_IN_ERRORS = 5   # an MSSP's list runs to dozens; the line stays readable


@dataclass(frozen=True)
class AllowedAddresses:
    """The hosts --allowed-addresses lets --address name: host names, addresses and CIDR
    ranges. With no entries, any host."""

    entries: tuple[str, ...] = ()      # as listed, for the error
    names: frozenset[str] = frozenset()
    networks: tuple[_Network, ...] = ()

    @classmethod
    def from_option(cls, text: str | None) -> "AllowedAddresses":
        """A comma-separated list, its entries trimmed and the empty ones skipped."""
        entries = tuple(entry for entry in (part.strip() for part in (text or "").split(","))
                        if entry)
        names, networks = set(), []
        for entry in entries:
            network = _allowed_network(entry)
            if network is not None:
                networks.append(network)
            elif _listable_name(entry):
                names.add(_name_key(entry))
            else:
                raise UsageError(f"--allowed-addresses entry {entry!r} is not a host name, an "
                                 f"address or a CIDR range (no ports, URLs or wildcards)")
        return cls(entries, frozenset(names), tuple(networks))

    def check(self, url: str) -> None:
        """Raise UsageError unless the host of `url`, an address as parse_address() gives
        it, is allowed (any port). A host name is never resolved for this: its address
        could change before the connection, and a range says nothing about a name."""
        if not self.entries:
            return
        host = urlsplit(url).hostname or ""
        try:
            address = _unmapped(ipaddress.ip_network(host))
        except ValueError:   # a host name
            allowed = _name_key(host) in self.names
            others, hint = self.networks, "list the host name itself"
        else:
            allowed = any(address.version == network.version and address.subnet_of(network)
                          for network in self.networks)
            others, hint = self.names, "list the address or its range"
        if allowed:
            return
        why = f": {hint}; names are never resolved for this check" if others else ""
        raise UsageError(f"--address {host} is not in --allowed-addresses "
                         f"({self._listing()}){why}")

    def _listing(self) -> str:
        shown = ", ".join(self.entries[:_LISTED_IN_ERRORS])
        more = len(self.entries) - _LISTED_IN_ERRORS
        return f"{shown} and {more} more" if more > 0 else shown


def _allowed_network(entry: str) -> _Network | None:
    """An address or range entry as a network (an address: a network of one); None when the
    entry is neither. A range with host bits set is refused, not rounded: it may be a
    mistyped address as well as a mistyped range."""
    try:
        return _unmapped(ipaddress.ip_network(entry))
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    raise UsageError(f"--allowed-addresses entry {entry!r} has host bits set: write "
                     f"{network} for the range, or {entry.partition('/')[0]} for the address")


def _unmapped(network: _Network) -> _Network:
    """An IPv4-mapped IPv6 network as the IPv4 network it stands for, so that neither an
    entry nor --address can hide an IPv4 host from an IPv4 range."""
    if network.version == 6 and network.subnet_of(_IPV4_MAPPED):
        return ipaddress.ip_network((network.network_address.ipv4_mapped,
                                     network.prefixlen - 96))
    return network


def _listable_name(entry: str) -> bool:
    """A host name entry; all-digit last labels are refused, as resolvers read 10.1 or
    167772161 as an address."""
    labels = _name_key(entry).split(".")
    return (len(entry) <= 253 and all(_HOST_LABEL.match(label) for label in labels)
            and not labels[-1].isdigit())


def _name_key(host: str) -> str:
    """A host name as the list compares it: lower case, without the root's trailing dot."""
    return host.lower().removesuffix(".")
