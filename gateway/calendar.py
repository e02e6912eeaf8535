"""Working days and office hours in Vietnam time (floor 1): the legal receipt time (R19) and the
issue deadline of R9.

A day is worked when the configuration says so (`extra_workdays`), else not when it says so
(`holidays`), else not when it is a Vietnamese public holiday of the `holidays` package (statutory
days, Tết, observed days, and the government's published swaps such as 2026-08-31 off for
2026-08-22 worked), else when its weekday is a workday, or when the package lists it as a swapped
working Saturday. The override lists are where an agency enters each year's announced
arrangement before the package knows it.

Times go in and out aware; arithmetic happens in UTC+07:00. An office period is half-open:
07:30 is inside the morning, 11:30 is not.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import holidays

from gateway.config import VIETNAM, CalendarConfig, Config, PublicHolidays

# Far beyond any real run of days off (Tết with bridges is 9–10 days): a configuration without a
# working day is refused by config; this only stops a loop on a calendar that never works.
_MAX_LOOKAHEAD: Final = 370


class CalendarError(Exception):
    """The calendar has no working day within a year of the date asked about."""


class OfficeCalendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self._tz = config.timezone
        self._years: dict[int, holidays.HolidayBase] = {}

    def _public(self, year: int) -> holidays.HolidayBase | None:
        if self.config.public_holidays is PublicHolidays.NONE:
            return None
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = holidays.country_holidays("VN", years=year, language="vi")
        return found

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.config.extra_workdays:
            return True
        if day in self.config.holidays:
            return False
        public = self._public(day.year)
        if public is not None and day in public:
            return False
        if day.weekday() in self.config.workdays:
            return True
        # A weekend day the government swapped into a working day (e.g. Saturday 2026-08-22).
        return public is not None and day.weekday() >= 5 and public.is_working_day(day)

    def periods(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The office periods of `day` as aware datetimes in Vietnam time; none on a day off."""
        if not self.is_working_day(day):
            return []
        return [
            (
                dt.datetime.combine(day, start, tzinfo=self._tz),
                dt.datetime.combine(day, end, tzinfo=self._tz),
            )
            for start, end in self.config.office_hours
        ]

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day after `day`."""
        candidate = day + dt.timedelta(days=1)
        for _ in range(_MAX_LOOKAHEAD):
            if self.is_working_day(candidate):
                return candidate
            candidate += dt.timedelta(days=1)
        raise CalendarError(f"no working day within {_MAX_LOOKAHEAD} days of {day.isoformat()}")

    def legal_receipt(self, instant: dt.datetime) -> dt.datetime:
        """R19: `instant` itself inside office hours, else the start of the next office period
        (UTC)."""
        local = _aware(instant).astimezone(self._tz)
        day = local.date()
        for start, end in self.periods(day):
            if local < start:
                return start.astimezone(dt.UTC)
            if local < end:
                return local.astimezone(dt.UTC)
        first = self.periods(self.next_working_day(day))[0][0]
        return first.astimezone(dt.UTC)

    def end_of_working_day(self, instant: dt.datetime) -> dt.datetime:
        """The end of the last office period of the working day on which `instant` is legally
        received (UTC): "the same day" of R13 for an acknowledgment."""
        legal = self.legal_receipt(instant).astimezone(self._tz)
        return self.periods(legal.date())[-1][1].astimezone(dt.UTC)

    def issue_deadline(self, promulgated: dt.date) -> dt.datetime:
        """R9: the latest an envelope should leave, "the next working morning" after the day it
        was signed: the end of the first office period of the next working day (UTC)."""
        day = self.next_working_day(promulgated)
        return self.periods(day)[0][1].astimezone(dt.UTC)


def _aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return instant


def vietnam_time(instant: dt.datetime) -> dt.datetime:
    """`instant` shown in UTC+07:00, as every edge of the gateway shows time."""
    return _aware(instant).astimezone(VIETNAM)


class Calendars:
    """One OfficeCalendar per hosted agency (its own hours), one for everybody else."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._found: dict[str | None, OfficeCalendar] = {}

    def of(self, organ_id: str | None) -> OfficeCalendar:
        key = organ_id if organ_id is not None and self._config.hosts(organ_id) else None
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = OfficeCalendar(self._config.calendar_for(key))
        return found
