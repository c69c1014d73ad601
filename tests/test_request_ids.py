"""The request's ids: which incoming ids are accepted, and the log filter that writes them."""

from __future__ import annotations

import logging
import re

import pytest

from spyglass import request_ids
from spyglass.request_ids import LogFilter, RequestIds

GLOBAL = "req-0f4e7a2c-1b3d-4c5e-8f90-a1b2c3d4e5f6"
OWN_FORM = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_a_well_formed_global_id_is_answered() -> None:
    ids = RequestIds.of(GLOBAL)
    assert ids.global_id == GLOBAL
    assert ids.answered == GLOBAL
    assert OWN_FORM.fullmatch(ids.own)
    assert ids.own != GLOBAL


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "req-not-a-uuid",
        GLOBAL.upper().replace("REQ-", "req-"),
        GLOBAL[4:],
        GLOBAL + "0",
        GLOBAL + "\nforged log line",
        " " + GLOBAL,
    ],
)
def test_a_malformed_or_missing_id_is_ignored(header: str | None) -> None:
    ids = RequestIds.of(header)
    assert ids.global_id is None
    assert ids.answered == ids.own
    assert OWN_FORM.fullmatch(ids.own)


def test_own_ids_differ() -> None:
    assert RequestIds.of(GLOBAL).own != RequestIds.of(GLOBAL).own


def _record() -> logging.LogRecord:
    return logging.LogRecord("spyglass.x", logging.INFO, __file__, 1, "hello", None, None)


def test_the_filter_writes_both_ids_of_the_current_request() -> None:
    ids = RequestIds.of(GLOBAL)
    token = request_ids.current.set(ids)
    try:
        record = _record()
        assert LogFilter().filter(record)
    finally:
        request_ids.current.reset(token)
    line = logging.Formatter(request_ids.LOG_FORMAT).format(record)
    assert f"[{ids.own} {GLOBAL}] hello" in line


def test_outside_a_request_the_filter_writes_dashes() -> None:
    record = _record()
    assert LogFilter().filter(record)
    assert (record.request_id, record.global_request_id) == ("-", "-")


def test_without_a_global_id_the_filter_writes_a_dash_for_it() -> None:
    ids = RequestIds.of(None)
    token = request_ids.current.set(ids)
    try:
        record = _record()
        LogFilter().filter(record)
    finally:
        request_ids.current.reset(token)
    assert (record.request_id, record.global_request_id) == (ids.own, "-")


def test_the_serve_log_config_is_accepted_by_logging() -> None:
    import logging.config

    config = request_ids.log_config("warning")
    logging.config.dictConfig(config)
    handler = logging.getLogger("spyglass").handlers[0]
    assert any(isinstance(f, LogFilter) for f in handler.filters)
    for name in ("spyglass", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
