"""Injected behaviour for tests and benchmarks: latency, budget (429), 5xx, timeouts, malformed JSON, and a
trickle (the body sent one byte at a time, slowly: a server that never times a read out yet never finishes)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from cwsim import errors
from cwsim.state import SimState


def before_request(state: SimState) -> None:
    """Run ahead of every API request; raises ``ApiError`` when a fault answers instead of the API."""
    cfg = state.config
    if cfg.latency_ms > 0:
        time.sleep(cfg.latency_ms / 1000.0)
    retry_after = state.admit()
    if retry_after is not None:
        raise errors.too_many_requests(retry_after)
    if state.take("timeout_next"):
        time.sleep(cfg.timeout_seconds)
    if state.take("error_next"):
        raise errors.server_error(cfg.error_status)
    if cfg.error_rate > 0:
        with state.lock:
            hit = state.rng.random() < cfg.error_rate
        if hit:
            raise errors.server_error(cfg.error_status)


def maybe_truncate(state: SimState, body: bytes) -> bytes:
    """Cut a JSON body in half (still labelled JSON) while ``malformed_next`` lasts."""
    if body and state.take("malformed_next"):
        return body[: max(1, len(body) // 2)]
    return body


def maybe_trickle(state: SimState, body: Iterable[bytes]) -> Iterable[bytes]:
    """While ``trickle_next`` lasts, send the body one byte per ``trickle_interval`` seconds."""
    if not state.take("trickle_next"):
        return body
    return _trickle(body, state.config.trickle_interval)


def _trickle(body: Iterable[bytes], interval: float) -> Iterator[bytes]:
    # Bounded by the body's length; a client that gives up ends it at the next write (the connection is gone).
    first = True
    try:
        for chunk in body:
            for i in range(len(chunk)):
                if not first:
                    time.sleep(interval)
                first = False
                yield chunk[i:i + 1]
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
