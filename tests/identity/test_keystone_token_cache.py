"""The bounded token cache of spyglass.identity.keystone."""

from spyglass.context import RequestContext
from spyglass.identity.keystone import TokenCache, ValidatedToken


def _entry(until: float) -> ValidatedToken:
    return ValidatedToken(
        RequestContext("u", "p", frozenset({"member"})), expires_at=until, cached_until=until
    )


def test_entries_leave_at_their_time_and_past_the_size_least_recently_used_first() -> None:
    now = [100.0]
    cache = TokenCache(2, clock=lambda: now[0])
    cache.put("a", _entry(110))
    cache.put("b", _entry(200))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", _entry(200))
    assert cache.get("b") is None and len(cache) == 2
    now[0] = 110
    assert cache.get("a") is None
    assert cache.get("c") is not None
