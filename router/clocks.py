"""Statutory deadlines, started by the router when an enquiry is an FOI request or a SAR.

Working days exclude weekends and England and Wales bank holidays (the ``holidays`` package),
as the ICO counts them.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import lru_cache

import holidays

FOI_WORKING_DAYS = 20


@lru_cache(maxsize=16)
def _bank_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("GB", subdiv="ENG", years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
    current = start
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        counted += is_working_day(current)
    return current


def foi_due(received: date) -> date:
    """FOIA s.10: twenty working days following the date of receipt."""
    return add_working_days(received, FOI_WORKING_DAYS)


def sar_due(received: date) -> date:
    """UK GDPR art. 12(3): one month, to the corresponding date of the next month (the
    month's last day when it has none), moved to the next working day when that is not one."""
    year, month = (received.year + 1, 1) if received.month == 12 else (received.year, received.month + 1)
    due = date(year, month, min(received.day, calendar.monthrange(year, month)[1]))
    while not is_working_day(due):
        due += timedelta(days=1)
    return due
