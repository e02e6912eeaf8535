"""Dates and instants: the one form edXML writes, and the forms senders actually use.

QCVN 102 writes dates as `yyyy/MM/dd` and instants as `yyyy/MM/dd HH:mm:ss` in Vietnam time
(standards.md §2.8). Real senders also write `dd/MM/yyyy`, ISO 8601, single-digit fields and
offsets, so parsing reports *which* form it recognised: the reader turns a non-standard form into
an INFO finding instead of refusing the document.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

from edxml.model import VN_TZ

DATE_FORM = "yyyy/MM/dd"
TIMESTAMP_FORM = "yyyy/MM/dd HH:mm:ss"
EMPTY = "empty"
INVALID = "invalid"

_SEP = r"(?P<sep>[/.-])"
_YEAR_FIRST = rf"(?P<y>[0-9]{{4}}){_SEP}(?P<m>[0-9]{{1,2}})(?P=sep)(?P<d>[0-9]{{1,2}})"
_DAY_FIRST = rf"(?P<d>[0-9]{{1,2}}){_SEP}(?P<m>[0-9]{{1,2}})(?P=sep)(?P<y>[0-9]{{4}})"
_TIME = (
    r"(?:(?P<tsep>[ ]+|T)(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})"
    r"(?::(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?)?"
)
_ZONE = r"[ ]*(?P<z>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_PATTERNS = tuple(
    (re.compile(rf"{date}{_TIME}{_ZONE}"), year_first)
    for date, year_first in ((_YEAR_FIRST, True), (_DAY_FIRST, False))
)


@attrs.frozen
class DateParse:
    """A parsed date element. `form` names the layout recognised (e.g. `dd/MM/yyyy`), or is
    `empty` (no text: value None, nothing wrong) or `invalid` (value None)."""

    value: dt.date | None
    form: str

    @property
    def standard(self) -> bool:
        return self.form == DATE_FORM


@attrs.frozen
class TimestampParse:
    """A parsed instant. `zoned` is False when the text had no offset and Vietnam time was assumed;
    the value is then aware (+07:00) all the same."""

    value: dt.datetime | None
    form: str
    zoned: bool = False

    @property
    def standard(self) -> bool:
        return self.form == TIMESTAMP_FORM


@attrs.frozen
class _Match:
    value: dt.datetime
    form: str
    has_time: bool
    zoned: bool


def _field(text: str, letter: str) -> str:
    return letter * 2 if len(text) == 2 else letter


def _match(text: str) -> _Match | None:
    """Recognise one of the layouts; None if none fits. Raises ValueError for impossible values."""
    for pattern, year_first in _PATTERNS:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        sep = m["sep"]
        day, month = _field(m["d"], "d"), _field(m["m"], "M")
        form = f"yyyy{sep}{month}{sep}{day}" if year_first else f"{day}{sep}{month}{sep}yyyy"
        hour = minute = second = micro = 0
        has_time = m["H"] is not None
        if has_time:
            hour, minute = int(m["H"]), int(m["M"])
            tsep = "T" if m["tsep"] == "T" else " "
            form += f"{tsep}{_field(m['H'], 'H')}:mm"
            if m["S"] is not None:
                second = int(m["S"])
                form += ":ss"
            if m["f"] is not None:
                micro = int(m["f"][:6].ljust(6, "0"))
                form += "." + "f" * len(m["f"])
        zone: dt.tzinfo = VN_TZ
        zoned = m["z"] is not None
        if zoned:
            zone = _zone(m["z"])
            form += "Z" if m["z"] == "Z" else "±hh:mm"
        value = dt.datetime(
            int(m["y"]), int(m["m"]), int(m["d"]), hour, minute, second, micro, tzinfo=zone
        )
        return _Match(value=value, form=form, has_time=has_time, zoned=zoned)
    return None


def _zone(text: str) -> dt.tzinfo:
    if text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or "0")
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset out of range: {text}")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_date(text: str | None) -> DateParse:
    """Read a date element. A timestamp in a date element gives its calendar date."""
    stripped = (text or "").strip()
    if not stripped:
        return DateParse(None, EMPTY)
    try:
        found = _match(stripped)
    except ValueError:
        return DateParse(None, INVALID)
    if found is None:
        return DateParse(None, INVALID)
    return DateParse(found.value.date(), found.form)


def parse_timestamp(text: str | None) -> TimestampParse:
    """Read an instant. Without an offset it is Vietnam time; a bare date is its midnight."""
    stripped = (text or "").strip()
    if not stripped:
        return TimestampParse(None, EMPTY)
    try:
        found = _match(stripped)
    except ValueError:
        return TimestampParse(None, INVALID)
    if found is None:
        return TimestampParse(None, INVALID)
    return TimestampParse(found.value, found.form, zoned=found.zoned)


def format_date(value: dt.date) -> str:
    """`yyyy/MM/dd`. (strftime's %Y does not pad years below 1000 on every platform.)"""
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def format_timestamp(value: dt.datetime) -> str:
    """`yyyy/MM/dd HH:mm:ss` in Vietnam time; sub-second precision is dropped.

    A naive datetime is refused: guessing its zone is the reader's job, never the writer's.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timestamp without time zone cannot be written")
    local = value.astimezone(VN_TZ)
    return f"{format_date(local.date())} {local.hour:02d}:{local.minute:02d}:{local.second:02d}"
