"""R19 (legal receipt time under office hours), R20 (Vietnam time at the edges) and R9's issue
deadline, on the real Vietnamese calendar of the `holidays` package plus the configured overrides.
"""

from __future__ import annotations

import datetime as dt

import attrs

from twisted.trial.unittest import SynchronousTestCase

from gateway.calendar import CalendarError, OfficeCalendar, vietnam_time
from gateway.config import VIETNAM, CalendarConfig, PublicHolidays


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=VIETNAM)


CAL = OfficeCalendar(CalendarConfig())


class WorkingDayTests(SynchronousTestCase):
    def test_R19_tet_2026_is_off_from_saturday_14_to_sunday_22(self) -> None:
        for day in range(14, 23):
            self.assertFalse(CAL.is_working_day(dt.date(2026, 2, day)), f"2026-02-{day}")
        self.assertTrue(CAL.is_working_day(dt.date(2026, 2, 13)))
        self.assertTrue(CAL.is_working_day(dt.date(2026, 2, 23)))

    def test_R19_swapped_saturday_2026_08_22_is_worked_and_31_08_is_off(self) -> None:
        self.assertTrue(CAL.is_working_day(dt.date(2026, 8, 22)))
        self.assertFalse(CAL.is_working_day(dt.date(2026, 8, 31)))
        self.assertFalse(CAL.is_working_day(dt.date(2026, 9, 1)))
        self.assertFalse(CAL.is_working_day(dt.date(2026, 9, 2)))

    def test_R19_swapped_saturday_2025_04_26_is_worked(self) -> None:
        self.assertTrue(CAL.is_working_day(dt.date(2025, 4, 26)))
        self.assertFalse(CAL.is_working_day(dt.date(2025, 5, 2)))

    def test_R19_vietnam_culture_day_2026_11_24_is_off(self) -> None:
        self.assertFalse(CAL.is_working_day(dt.date(2026, 11, 24)))
        self.assertTrue(CAL.is_working_day(dt.date(2026, 11, 23)))
        self.assertTrue(CAL.is_working_day(dt.date(2025, 11, 24)))  # not a holiday before 2026

    def test_R19_overrides_win_over_the_package(self) -> None:
        config = CalendarConfig(
            holidays=frozenset({dt.date(2027, 6, 1)}),
            extra_workdays=frozenset({dt.date(2026, 2, 16)}),
        )
        calendar = OfficeCalendar(config)
        self.assertFalse(calendar.is_working_day(dt.date(2027, 6, 1)))
        self.assertTrue(calendar.is_working_day(dt.date(2026, 2, 16)))

    def test_R19_without_public_holidays_only_weekdays_and_overrides(self) -> None:
        calendar = OfficeCalendar(CalendarConfig(public_holidays=PublicHolidays.NONE))
        self.assertTrue(calendar.is_working_day(dt.date(2026, 2, 17)))
        self.assertFalse(calendar.is_working_day(dt.date(2026, 8, 22)))

    def test_R19_six_day_week(self) -> None:
        calendar = OfficeCalendar(CalendarConfig(workdays=frozenset(range(6))))
        self.assertTrue(calendar.is_working_day(dt.date(2026, 3, 7)))  # a Saturday
        self.assertFalse(calendar.is_working_day(dt.date(2026, 3, 8)))

    def test_a_calendar_that_never_works_says_so(self) -> None:
        never = OfficeCalendar(
            attrs.evolve(
                CalendarConfig(), workdays=frozenset(), public_holidays=PublicHolidays.NONE
            )
        )
        with self.assertRaises(CalendarError):
            never.next_working_day(dt.date(2026, 1, 1))


class LegalReceiptTests(SynchronousTestCase):
    def assertLegal(self, arrived: dt.datetime, legal: dt.datetime) -> None:
        got = CAL.legal_receipt(arrived)
        self.assertEqual(got, legal)
        self.assertEqual(got.tzinfo, dt.UTC)

    def test_R19_inside_office_hours_is_the_arrival_itself(self) -> None:
        self.assertLegal(vn(2026, 3, 4, 9, 15), vn(2026, 3, 4, 9, 15))
        self.assertLegal(vn(2026, 3, 4, 7, 30), vn(2026, 3, 4, 7, 30))  # the first minute counts
        self.assertLegal(vn(2026, 3, 4, 16, 59), vn(2026, 3, 4, 16, 59))

    def test_R19_lunch_break_counts_from_the_afternoon(self) -> None:
        self.assertLegal(vn(2026, 3, 4, 11, 30), vn(2026, 3, 4, 13, 30))  # 11:30 is outside
        self.assertLegal(vn(2026, 3, 4, 12, 45), vn(2026, 3, 4, 13, 30))

    def test_R19_evening_and_early_morning(self) -> None:
        self.assertLegal(vn(2026, 3, 4, 17, 0), vn(2026, 3, 5, 7, 30))
        self.assertLegal(vn(2026, 3, 4, 22, 10), vn(2026, 3, 5, 7, 30))
        self.assertLegal(vn(2026, 3, 5, 6, 0), vn(2026, 3, 5, 7, 30))

    def test_R19_friday_evening_counts_from_monday(self) -> None:
        self.assertLegal(vn(2026, 3, 6, 18, 0), vn(2026, 3, 9, 7, 30))

    def test_R19_received_during_tet_2026_counts_from_monday_23(self) -> None:
        self.assertLegal(vn(2026, 2, 13, 17, 30), vn(2026, 2, 23, 7, 30))
        self.assertLegal(vn(2026, 2, 18, 10, 0), vn(2026, 2, 23, 7, 30))

    def test_R19_friday_21_08_2026_evening_counts_from_the_worked_saturday(self) -> None:
        self.assertLegal(vn(2026, 8, 21, 19, 0), vn(2026, 8, 22, 7, 30))
        # …and that Saturday's evening from Thursday 3 September (31/8–2/9 off).
        self.assertLegal(vn(2026, 8, 28, 17, 30), vn(2026, 9, 3, 7, 30))

    def test_R19_culture_day_2026_counts_from_the_next_morning(self) -> None:
        self.assertLegal(vn(2026, 11, 24, 9, 0), vn(2026, 11, 25, 7, 30))

    def test_R20_any_zone_in_the_same_instant_out(self) -> None:
        utc = dt.datetime(2026, 3, 4, 2, 15, tzinfo=dt.UTC)  # 09:15 in Hà Nội
        self.assertEqual(CAL.legal_receipt(utc), utc)
        self.assertEqual(vietnam_time(utc).isoformat(), "2026-03-04T09:15:00+07:00")
        with self.assertRaises(ValueError):
            CAL.legal_receipt(dt.datetime(2026, 3, 4, 9, 15))

    def test_R19_agency_hours(self) -> None:
        own = OfficeCalendar(
            CalendarConfig(
                office_hours=((dt.time(8, 0), dt.time(12, 0)), (dt.time(13, 0), dt.time(17, 0)))
            )
        )
        self.assertEqual(own.legal_receipt(vn(2026, 3, 4, 7, 45)), vn(2026, 3, 4, 8, 0))
        self.assertEqual(own.legal_receipt(vn(2026, 3, 4, 12, 30)), vn(2026, 3, 4, 13, 0))

    def test_end_of_the_working_day_of_receipt(self) -> None:
        self.assertEqual(CAL.end_of_working_day(vn(2026, 3, 4, 9, 0)), vn(2026, 3, 4, 17, 0))
        self.assertEqual(CAL.end_of_working_day(vn(2026, 3, 6, 20, 0)), vn(2026, 3, 9, 17, 0))


class IssueDeadlineTests(SynchronousTestCase):
    def test_R9_signed_on_a_wednesday_leaves_by_thursday_morning(self) -> None:
        self.assertEqual(CAL.issue_deadline(dt.date(2026, 3, 4)), vn(2026, 3, 5, 11, 30))

    def test_R9_signed_on_friday_leaves_by_monday_morning(self) -> None:
        self.assertEqual(CAL.issue_deadline(dt.date(2026, 3, 6)), vn(2026, 3, 9, 11, 30))

    def test_R9_signed_before_tet_leaves_by_the_first_morning_after(self) -> None:
        self.assertEqual(CAL.issue_deadline(dt.date(2026, 2, 13)), vn(2026, 2, 23, 11, 30))
