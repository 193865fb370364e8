"""Email addresses as sign-in keys: the one normal form (trimmed, lower case) and the one accepted shape."""

from __future__ import annotations

import re

# Deliberately plainer than RFC 5322: no quoted local parts, no IP literals, and nothing that could break out of a
# header or an HTML attribute; a real work address always fits.
EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$")
MAX_LENGTH = 320


def normalise_email(raw: str | None) -> str:
    """The form every lookup and every stored address uses."""
    return (raw or "").strip().lower()


def is_valid_email(email: str) -> bool:
    """Whether an already normalised ``email`` has the accepted shape and length."""
    return len(email) <= MAX_LENGTH and EMAIL.match(email) is not None
