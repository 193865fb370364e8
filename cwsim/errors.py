"""ConnectWise error bodies (``ErrorResponseMessage {code, message, errors?}``) and their exception."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised anywhere in request handling; the app turns it into the JSON error response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = body or {"code": code, "message": message}
        if errors:
            self.body["errors"] = errors
        self.headers = headers or {}


def not_authenticated() -> ApiError:
    return ApiError(401, "ConnectWiseApi", "UserNotAuthenticated")


def forbidden() -> ApiError:
    # 403 is documented for a security role without the permission (API-NOTES §7); this body is a guess.
    return ApiError(403, "Forbidden", "You do not have permission to access this resource.")


def endpoint_missing() -> ApiError:
    return ApiError(404, "ConnectWiseApi", "The endpoint does not exist.")


def not_found(label: str, record_id: Any) -> ApiError:
    return ApiError(404, "NotFound", f"{label} {record_id} not found")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405,
        "ConnectWiseApi",
        f"The requested resource does not support http method '{method}'.",
        headers={"Allow": "GET"},
    )


def bad_condition(message: str) -> ApiError:
    # Real tenants answer an unknown field with code "ApiFindCondition" ("typeids is not a recognized name.").
    return ApiError(400, "ApiFindCondition", message)


def invalid_object(resource: str, field: str, message: str, code: str = "InvalidField") -> ApiError:
    return ApiError(
        400,
        "InvalidObject",
        f"{resource} object is invalid",
        [{"code": code, "message": message, "resource": resource, "field": field}],
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "InvalidObject", message)


def too_many_requests(retry_after: int) -> ApiError:
    # The documented throttling body uses "error", not "code".
    return ApiError(
        429,
        "",
        "",
        headers={"Retry-After": str(retry_after)},
        body={
            "error": "ConnectWiseAPI",
            "message": f"Too many requests. Please try again in {retry_after} seconds.",
        },
    )


def server_error(status: int = 500) -> ApiError:
    return ApiError(status, "ConnectWiseApi", "An error has occurred.")


def write_refused(status: int = 409) -> ApiError:
    """A write turned away as a whole (the ``write_refusal_next`` knob); 409 is ConnectWise's "record in use or
    conflict" (API-NOTES §7). The body's wording is a guess."""
    if status == 409:
        return ApiError(409, "Conflict", "The record is being updated by another process. Try again later.")
    return ApiError(status, "ConnectWiseApi", "The change was refused.")
