"""The one reader of ConnectWise JSON: typed fields, a strict mode and a tolerant mode, and ``InvalidRecord``.

ConnectWise omits null fields and adds new ones over time, so an omitted field is never an error (it reads as the
default below) and unknown fields are ignored. What differs between the modes is a field that is present with
the wrong type (an amount that is text, an id that is not an integer, a date that is not a date):

* strict (reconstruction, anything that prints money): ``InvalidRecord`` naming the record kind and the field,
  never the value, so the message is safe to log and to show;
* tolerant (list rows, member sync): the field reads as its default and its path is added to ``degraded``, which
  every record carries, so a caller can mark the row instead of showing a silent zero.

Defaults: text ``""``, numbers ``Decimal(0)`` (``None`` for optional ones), flags the caller's default, dates and
times ``None``. Either mode refuses a record that is not an object or has no usable ``id``: nothing can link to
such a record, so tolerant callers drop it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from app.connectwise import errors


class InvalidRecord(errors.MalformedResponse):
    """ConnectWise sent a record we cannot read (wrong types, missing ids); retrying will not help."""

    retryable = False

    def __init__(self, message: str, kind: str = "", field: str = ""):
        super().__init__(message)
        self.kind, self.field = kind, field


@dataclass(frozen=True, kw_only=True)
class Record:
    """What every record keeps: its ConnectWise id, ``_info.lastUpdated``, and which fields read as defaults."""

    kind: ClassVar[str] = ""  # the name sources and flags use: "product", "time", "expense", ...
    id: int
    last_updated: datetime | None = None
    degraded: tuple[str, ...] = ()  # field paths the tolerant reader could not read (empty in strict mode)


class Reader:
    """Reads one record's fields with type checks; errors name ``kind`` and the field path."""

    def __init__(self, data: Any, kind: str, *, tolerant: bool = False):
        if not isinstance(data, dict):
            raise InvalidRecord(f"ConnectWise sent a {kind} that is not an object", kind)
        self.data, self.kind, self.tolerant = data, kind, tolerant
        self.degraded: list[str] = []

    def record(self) -> dict[str, Any]:
        """The ``Record`` fields (id, last_updated, degraded), for ``cls(**r.record(), ...)``; call it last."""
        return {"id": self.int_("id", required=True), "last_updated": self.datetime_("_info/lastUpdated"),
                "degraded": tuple(self.degraded)}

    def bad(self, path: str, expected: str) -> InvalidRecord:
        return InvalidRecord(f"ConnectWise sent a {self.kind} whose {path} is not {expected}", self.kind, path)

    def _wrong(self, path: str, expected: str, default: Any) -> Any:
        """A present field of the wrong type: an error in strict mode, the default (marked) in tolerant mode."""
        if not self.tolerant:
            raise self.bad(path, expected)
        self.degraded.append(path)
        return default

    def _raw(self, path: str) -> Any:
        value: Any = self.data
        for part in path.split("/"):
            if not isinstance(value, dict):
                if value is None:
                    return None
                return self._wrong(path, "an object", None)
            value = value.get(part)
        return value

    def int_(self, path: str, required: bool = False) -> int | None:
        value = self._raw(path)
        if value is None:
            if required:
                # No default can stand in for an id: tolerant callers drop the record.
                raise InvalidRecord(f"ConnectWise sent a {self.kind} without {path}", self.kind, path)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if required:
                raise self.bad(path, "an integer")
            return self._wrong(path, "an integer", None)
        return value

    def str_(self, path: str) -> str:
        value = self._raw(path)
        if value is None:
            return ""
        if not isinstance(value, str):
            return self._wrong(path, "text", "")
        return value.strip()

    def bool_(self, path: str, default: bool = False) -> bool:
        value = self._raw(path)
        if value is None:
            return default
        if not isinstance(value, bool):
            return self._wrong(path, "true or false", default)
        return value

    def dec(self, path: str, required: bool = False) -> Decimal:
        """A number as Decimal via its shortest repr (0.1 stays 0.1); omitted means 0 unless ``required``."""
        value = self.opt_dec(path)
        if value is None:
            if required and path not in self.degraded:
                if not self.tolerant:
                    raise InvalidRecord(f"ConnectWise sent a {self.kind} without {path}", self.kind, path)
                self.degraded.append(path)
            return Decimal(0)
        return value

    def opt_dec(self, path: str) -> Decimal | None:
        value = self._raw(path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self._wrong(path, "a number", None)
        if isinstance(value, float) and not math.isfinite(value):
            return self._wrong(path, "a finite number", None)
        try:
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:  # pragma: no cover - repr of a finite float always parses
            return self._wrong(path, "a number", None)

    def datetime_(self, path: str) -> datetime | None:
        """An ISO-8601 time as an aware datetime (ConnectWise sends UTC with ``Z``; a bare time is taken as UTC)."""
        value = self._raw(path)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return self._wrong(path, "a date", None)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return self._wrong(path, "a date", None)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def date_(self, path: str) -> date | None:
        moment = self.datetime_(path)
        return moment.date() if moment is not None else None

    def mark(self, path: str) -> None:
        """Record that ``path`` read as a default (for nested values the caller parsed itself)."""
        self.degraded.append(path)
