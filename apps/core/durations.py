"""Budget and key durations as LiteLLM writes them: ``30s``, ``15m``, ``1h``, ``1d``, ``1mo``.

A month is a calendar month (the same day of the next month, clamped to its last day), so a
monthly budget resets on the same date each month rather than every 30 days.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError

_PATTERN = re.compile(r"^\s*(\d{1,6})\s*(s|m|h|d|w|mo)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class Duration:
    amount: int
    unit: str  # s, m, h, d, w or mo

    def after(self, start: datetime) -> datetime:
        """The moment this duration after ``start`` ends."""
        if self.unit == "mo":
            return add_months(start, self.amount)
        return start + timedelta(seconds=self.amount * _SECONDS[self.unit])

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(value: str) -> Duration:
    """Parse ``value``; raises ValueError with a message a client can act on."""
    match = _PATTERN.match(value or "")
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"'{value}' is not a duration: use a positive number and one of s, m, h, d, w, mo "
            "(e.g. '30s', '1h', '1d', '30d', '1mo')."
        )
    return Duration(amount=int(match.group(1)), unit=match.group(2))


def add_months(start: datetime, months: int) -> datetime:
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def validate_duration(value: str) -> None:
    """Model-field validator: blank is allowed (no duration), anything else must parse."""
    if not value:
        return
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
