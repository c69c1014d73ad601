"""spyglass.data.import_state: the os_glance_* bookkeeping through an import's life."""

from spyglass.data.import_state import FAILED, IMPORTING_TO, LOCK, ended, interrupted, part_ended, started


def test_started_takes_the_lock_and_clears_earlier_failures_of_its_stores() -> None:
    before = {IMPORTING_TO: "", FAILED: "a,c"}
    assert started(before, "t1", ["b", "a"]) == {LOCK: "t1", IMPORTING_TO: "a,b", FAILED: "c"}


def test_a_part_ended_keeps_the_lock() -> None:
    running = {LOCK: "t1", IMPORTING_TO: "a,b", FAILED: ""}
    assert part_ended(running, "a", failed=False) == {LOCK: "t1", IMPORTING_TO: "b", FAILED: ""}
    assert part_ended(running, "a", failed=True) == {LOCK: "t1", IMPORTING_TO: "b", FAILED: "a"}


def test_ended_drops_the_lock_and_always_shows_the_failed_stores() -> None:
    running = {LOCK: "t1", IMPORTING_TO: "a"}
    assert ended(running, "a", failed=False) == {IMPORTING_TO: "", FAILED: ""}
    assert ended(running, "a", failed=True) == {IMPORTING_TO: "", FAILED: "a"}


def test_interrupted_fails_every_store_still_importing() -> None:
    running = {LOCK: "t1", IMPORTING_TO: "b,c", FAILED: "a", "x": "y"}
    assert interrupted(running) == {IMPORTING_TO: "", FAILED: "a,b,c", "x": "y"}
