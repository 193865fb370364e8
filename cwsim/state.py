"""Simulator state shared by all request threads: options/knobs, the request log, and the data set."""

from __future__ import annotations

import dataclasses
import random
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cwsim.seed import build_dataset
from cwsim.store import Dataset

VERSIONED_CODEBASE = "v2025_1/"


@dataclass
class SimConfig:
    """Every knob; settable from the CLI, ``serve_in_thread(**options)`` and ``POST /_sim/config``."""

    company_id: str = "bettersim"
    public_key: str = "simpublic"
    private_key: str = "simprivate"
    invoices: int = 60
    seed: int = 1
    latency_ms: float = 0.0
    budget: int | None = None  # requests allowed per budget_window seconds; None = unlimited
    budget_window: float = 60.0
    error_rate: float = 0.0  # probability 0..1 of answering error_status
    error_next: int = 0  # the next N API requests answer error_status
    error_status: int = 500
    timeout_next: int = 0  # the next N API requests sleep timeout_seconds before answering
    timeout_seconds: float = 30.0
    malformed_next: int = 0  # the next N API responses carry truncated JSON
    trickle_next: int = 0  # the next N API responses send their body one byte every trickle_interval seconds
    trickle_interval: float = 1.0
    revoked: bool = False  # keys revoked: every API request answers 401
    forbidden: str = ""  # space-separated API paths (e.g. "system/callbacks") the key's security role lacks: 403
    write_refusal_next: int = 0  # the next N PATCH requests answer write_refusal_status (e.g. 409)
    write_refusal_status: int = 409
    forbidden_writes: str = ""  # space-separated API paths the role may read but not change: PATCH/POST/DELETE 403
    require_client_id: bool = True

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name: f for f in dataclasses.fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            current = getattr(self, key)
            if value is not None and current is not None and not isinstance(current, bool):
                value = type(current)(value)
            elif key == "budget" and value is not None:
                value = int(value)
            setattr(self, key, value)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    time: float  # epoch seconds when the request arrived
    duration_ms: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SimState:
    config: SimConfig
    data: Dataset = field(init=False)
    log: list[RequestRecord] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    accepted: deque = field(default_factory=deque)  # arrival times inside the budget window
    codebase: str = VERSIONED_CODEBASE
    deliveries: list = field(default_factory=list)  # cwsim.callbacks.Delivery, in the order they were made

    def __post_init__(self) -> None:
        self._initial = dataclasses.replace(self.config)
        self.rng = random.Random(self.config.seed)
        self.data = build_dataset(self.config.seed, self.config.invoices)
        self.callback_seq = 1
        # One signing key per simulator process, served at the key_url of every delivery.
        self.callback_signing_key = secrets.token_urlsafe(24)
        self.callback_key_id = str(uuid.uuid4())
        self.callback_retry_delays: tuple[float, ...] = (2.0, 4.0)  # ConnectWise's; tests may shorten them

    def record(self, entry: RequestRecord) -> None:
        with self.lock:
            self.log.append(entry)

    def requests(self, path_contains: str | None = None) -> list[RequestRecord]:
        """The request log (API and companyinfo requests; control calls are not logged)."""
        with self.lock:
            return [r for r in self.log if path_contains is None or path_contains in r.path]

    def configure(self, **values: Any) -> None:
        with self.lock:
            rebuild = {"seed", "invoices"} & values.keys()
            self.config.update(values)
            if rebuild:
                self.data = build_dataset(self.config.seed, self.config.invoices)

    def reset(self, keep_config: bool = False) -> None:
        """Back to start-up: log, counters and PATCHed data; knobs too unless ``keep_config``."""
        with self.lock:
            if not keep_config:
                self.config = dataclasses.replace(self._initial)
            self.log.clear()
            self.accepted.clear()
            self.rng = random.Random(self.config.seed)
            self.data = build_dataset(self.config.seed, self.config.invoices)
            self.callback_seq = 1
            self.deliveries.clear()

    def take(self, counter: str) -> bool:
        """Consume one of a "next N requests" counter; True when it applied to this request."""
        with self.lock:
            remaining = getattr(self.config, counter)
            if remaining > 0:
                setattr(self.config, counter, remaining - 1)
                return True
            return False

    def admit(self, now: float | None = None) -> int | None:
        """Budget check: None when admitted, else seconds until a slot frees (for Retry-After)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            budget, window = self.config.budget, self.config.budget_window
            if budget is None:
                return None
            if budget <= 0:  # a wall: nothing is admitted, and waiting a window is all Retry-After can say
                return max(1, int(window + 0.999))
            while self.accepted and now - self.accepted[0] >= window:
                self.accepted.popleft()
            if len(self.accepted) >= budget:
                return max(1, int(window - (now - self.accepted[0]) + 0.999))
            self.accepted.append(now)
            return None
