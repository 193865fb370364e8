"""An overall deadline for one ConnectWise call, enforced at the socket.

httpx timeouts bound each read, so a server that sends one byte a second (in the headers or the body) could hold
a thread forever. Here the network backend of a client's connection pool is wrapped so that every connect, TLS
handshake, read and write gets at most the time left before the current call's deadline, and none starts after
it. The deadline lives in a context variable that the client sets around each call, in the calling thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_until: ContextVar[float | None] = ContextVar("connectwise_deadline", default=None)


@contextmanager
def until(deadline: float) -> Iterator[None]:
    """Socket operations in this block end by ``deadline`` (a ``time.monotonic()`` value)."""
    token = _until.set(deadline)
    try:
        yield
    finally:
        _until.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _until.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the call's overall deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Wraps another backend (the default, or one that dials vetted addresses) without changing where it connects."""

    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, _bounded(timeout, httpcore.ConnectTimeout),
                                               local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _bounded(timeout, httpcore.ConnectTimeout),
                                                       socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(http: httpx.Client) -> bool:
    """Wrap the backend of every connection pool behind ``http``; False when a transport has none (e.g. a mock)."""
    transports = [http._transport, *(t for t in http._mounts.values() if t is not None)]  # noqa: SLF001
    wrapped = True
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            wrapped = False
        elif not isinstance(backend, DeadlineBackend):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    return wrapped
