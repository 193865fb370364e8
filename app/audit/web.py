"""Where an audited action came from, read off the current request (views call this; services take an Origin)."""

from __future__ import annotations

from flask import g, request

from app.audit.log import Origin


def request_origin() -> Origin:
    return Origin(request.remote_addr, request.headers.get("User-Agent", "")[:500] or None, g.get("request_id"))
