"""Typed ConnectWise failures, each with a message a person can act on."""

from __future__ import annotations


class ConnectWiseError(Exception):
    """Base: ``str(exc)`` is fit to show on a page or a failed job."""

    retryable = False

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class InsecureSite(ConnectWiseError):
    pass


class InvalidSite(ConnectWiseError):
    pass


class AuthRefused(ConnectWiseError):
    pass


class PermissionMissing(ConnectWiseError):
    def __init__(self, message: str, module: str, status: int | None = 403):
        super().__init__(message, status)
        self.module = module


class NotFound(ConnectWiseError):
    pass


class BadRequest(ConnectWiseError):
    pass


class Throttled(ConnectWiseError):
    retryable = True


class Unavailable(ConnectWiseError):
    retryable = True


class TimedOut(ConnectWiseError):
    retryable = True


class Unreachable(Unavailable):
    """No connection to the site at all (its name is not in DNS, the connection was refused or never answered, its
    certificate was refused): says so with the host and the reason, never as a problem with the keys."""

    def __init__(self, host: str, reason: str):
        super().__init__(f"Could not reach {host}: {reason}")
        self.host, self.reason = host, reason


class MalformedResponse(ConnectWiseError):
    retryable = True


class WriteUncertain(ConnectWiseError):
    """A write that is not safe to repeat was sent but not confirmed (a timeout, a dropped connection, a 5xx):
    ConnectWise may or may not have applied it, so it is not retried; the person checks the record first."""


# What a person is told when the request budget had no slot in time (pages, toasts, invoice messages alike).
BUSY_MESSAGE = "ConnectWise is busy with this account's requests right now. Try again in {seconds} seconds."


class Busy(ConnectWiseError):
    """Our own request budget toward ConnectWise had no slot within the caller's wait; not retried (it waited)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, 503)
        self.retry_after = retry_after
