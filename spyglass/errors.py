"""Domain errors. They know nothing of HTTP; spyglass.api.errors maps each to a status code."""

from __future__ import annotations


class SpyglassError(Exception):
    """Base class; the message is shown to the client."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        # A second, more specific line, shown under the message as Glance shows it.
        self.detail = detail


class NotFound(SpyglassError):
    pass


class Forbidden(SpyglassError):
    pass


class Unauthorized(SpyglassError):
    pass


class Invalid(SpyglassError):
    """The request is malformed or its values are not acceptable."""


class Conflict(SpyglassError):
    pass


class TooLarge(SpyglassError):
    pass


class Gone(SpyglassError):
    """The resource still exists but is no longer offered (an obsolete image's data)."""


class UnsupportedMediaType(SpyglassError):
    def __init__(self, message: str, detail: str = "", accept_patch: str = "") -> None:
        super().__init__(message, detail)
        self.accept_patch = accept_patch


class RangeNotSatisfiable(SpyglassError):
    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class TryLater(SpyglassError):
    """Not now: the client may retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(TryLater):
    """This client made too many failed attempts."""


class Busy(TryLater):
    """The server has too much of this kind of work in hand."""


class QuotaExceeded(TooLarge):
    """The project would go over one of its limits (spyglass.images.quotas): 413, as in Glance."""


class RateLimited(TryLater):
    """The project sent more requests of one kind than its rate allows (spyglass.images.rates)."""


class Unavailable(TryLater):
    """A service this one depends on (an external Keystone) does not answer, or not in time."""
