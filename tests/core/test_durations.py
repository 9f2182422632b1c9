from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from apps.core.durations import Duration, add_months, parse_duration, validate_duration

START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("1h", 3600),
        ("1d", 86400),
        ("30d", 30 * 86400),
        ("2w", 14 * 86400),
    ],
)
def test_fixed_durations(text: str, seconds: int) -> None:
    assert (parse_duration(text).after(START) - START).total_seconds() == seconds


def test_a_month_is_a_calendar_month_clamped_to_its_last_day() -> None:
    assert parse_duration("1mo") == Duration(1, "mo")
    assert parse_duration("1mo").after(START) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert add_months(START, 13) == datetime(2027, 2, 28, 12, 0, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 15, tzinfo=UTC), 1) == datetime(2027, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "0d", "1y", "d", "-1d", "1.5h", "1 month", "10"])
def test_bad_durations_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_the_field_validator_allows_blank_only() -> None:
    validate_duration("")
    validate_duration("1mo")
    with pytest.raises(ValidationError):
        validate_duration("monthly")
