"""Code requests and wrong codes for known and unknown emails: the same answers, and (this measures it) the same time.

A code request only records an attempt and enqueues the mail job; whether the email belongs to anyone is decided in
the job. A wrong code touches only Redis (the try counters, the address's budget, the per-hour failure count) and
the failed-code audit row is a delayed job's, for both kinds. This prints the server time of both kinds of request,
interleaved, and their ratio, for code requests and for wrong codes. Each wrong code is for a different address,
so none is paused by its budget of ten an hour.

`make bench-signin` (private servers in a temporary folder; 400 requests of each kind by default).
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import tempfile
import time
from pathlib import Path

AT = chr(64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    from app import create_app, dbadmin
    from app.config import Config
    from app.tenants.service import create_tenant
    from devtools.services import start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-bench-"))
    stack = start_stack(root)
    try:
        dbadmin.upgrade(stack.owner_url, stack.app_url)
        app = create_app(Config(APP_ENV="test", DATABASE_URL=stack.app_url, REDIS_URL=stack.redis.url,
                                SECRET_KEY="bench-secret-" + "x" * 40, LOG_LEVEL="WARNING", LOG_FORMAT="text",
                                RATE_LIMITS_ENABLED=False,
                                ENCRYPTION_KEYS="b1:" + base64.b64encode(b"\x05" * 32).decode()))
        known = "owner" + AT + "known.example"
        with app.app_context():
            session = app.extensions["session_factory"]()
            tenant = create_tenant(session, "Bench MSP", known, "Owner")
            session.commit()
            session.close()
            _add_users(app, tenant.id, args.requests + 10)
        client = app.test_client()
        client.get("/sign-in")
        with client.session_transaction() as sess:
            token = sess["_csrf"]
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(args.requests * 2 + 20):
            kind = "known" if i % 2 == 0 else "unknown"
            email = known if kind == "known" else f"nobody{i}" + AT + "unknown.example"
            start = time.perf_counter()
            response = client.post("/sign-in", data={"email": email, "csrf_token": token})
            elapsed = time.perf_counter() - start
            assert response.status_code == 302, response.status_code
            if i >= 20:  # warm-up
                times[kind].append(elapsed * 1000)
        for kind, values in times.items():
            q = statistics.quantiles(values, n=20)
            print(f"{kind:8s} requests: {len(values)}  median {statistics.median(values):.3f} ms  p95 {q[18]:.3f} ms")
        ratio = statistics.median(times["known"]) / statistics.median(times["unknown"])
        print(f"known / unknown median ratio: {ratio:.3f}")
        _wrong_codes(app, args.requests)
        app.extensions["engine"].dispose()
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def _add_users(app, tenant_id, n: int) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from app.tenancy import tenant_session
    from app.users.models import User

    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        for i in range(n):
            s.add(User(id=uuid.uuid4(), tenant_id=tenant_id, email=f"user{i}" + AT + "known.example", name="",
                       role="reviewer", active=True))


def _wrong_codes(app, requests: int) -> None:  # type: ignore[no-untyped-def]
    """Time one wrong code per address, known (with a live code, as the mail job leaves it) and unknown."""
    from app.auth import codes

    redis = app.extensions["redis"]
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(requests * 2 + 20):
        kind = "known" if i % 2 == 0 else "unknown"
        email = f"user{i // 2}" + AT + "known.example" if kind == "known" else f"nobody{i}" + AT + "unknown.example"
        client = app.test_client()
        client.get("/sign-in")
        with client.session_transaction() as sess:
            token = sess["_csrf"]
        assert client.post("/sign-in", data={"email": email, "csrf_token": token}).status_code == 302
        with client.session_transaction() as sess:
            attempt_id = sess["signin_attempt"]
        code = None
        if kind == "known":
            with app.test_request_context():
                code = codes.issue_code(redis, attempt_id, email)  # what the mail job does for a known address
        wrong = "000000" if code != "000000" else "111111"
        start = time.perf_counter()
        response = client.post("/sign-in/code", data={"code": wrong, "csrf_token": token})
        elapsed = time.perf_counter() - start
        assert response.status_code == 422, response.status_code
        if i >= 20:
            times[kind].append(elapsed * 1000)
    for kind, values in times.items():
        q = statistics.quantiles(values, n=20)
        print(f"wrong code, {kind:8s}: {len(values)}  median {statistics.median(values):.3f} ms  p95 {q[18]:.3f} ms")
    ratio = statistics.median(times["known"]) / statistics.median(times["unknown"])
    print(f"wrong code, known / unknown median ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
