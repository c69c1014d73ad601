"""The sharing-safety settings: Glance's behaviour by default, read from the environment, validated."""

from __future__ import annotations

import pytest

from spyglass.images.impact import GLANCE, Safeguards
from spyglass.settings import Settings, SettingsError, load_settings


def test_the_defaults_keep_glance_behaviour() -> None:
    settings = load_settings(environ={})
    assert Safeguards.from_settings(settings) == GLANCE
    assert (settings.protect_consumers, settings.recycle_retention_days) == (False, 0)


def test_read_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "SPYGLASS_PROTECT_CONSUMERS": "yes",
            "SPYGLASS_IMPACT_WINDOW_DAYS": "7",
            "SPYGLASS_RECYCLE_RETENTION_DAYS": "14",
            "SPYGLASS_WEBHOOK_POLL_SECONDS": "0",
        }
    )
    guard = Safeguards.from_settings(settings, override=True)
    assert guard == Safeguards(
        protect_consumers=True, impact_window_days=7, recycle_retention_days=14, override=True
    )
    assert settings.webhook_poll_seconds == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"impact_window_days": -1},
        {"recycle_retention_days": -1},
        {"purge_interval_seconds": 0},
        {"task_time_to_live": 0},
        {"webhook_max_attempts": 0},
        {"webhook_retry_seconds": -5},
        {"webhook_poll_seconds": -1},
    ],
)
def test_invalid_values_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(SettingsError):
        Settings(**bad).validate()  # type: ignore[arg-type]
