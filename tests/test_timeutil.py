"""The Images API's timestamps: isotime writes what strftime("%Y-%m-%dT%H:%M:%SZ") writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from spyglass.timeutil import isotime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 27, 2, 40, 51),
        datetime(2026, 11, 27, 2, 40, 51, 999_999),
        datetime(1999, 1, 2, 3, 4, 5, 6),
        datetime(9999, 12, 31, 23, 59, 59),
        datetime(999, 1, 1),
        datetime(1, 1, 1, 0, 0, 1),
        datetime(2026, 11, 27, 2, 40, 51, tzinfo=UTC),
        datetime(2026, 11, 27, 2, 40, 51, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_isotime_is_the_strftime_text(value: datetime) -> None:
    assert isotime(value) == value.strftime(FORMAT)


def test_isotime_of_nothing_is_nothing() -> None:
    assert isotime(None) is None
