"""Rendering benchmarks. Public page: server time of GET /i/<token> (p50, p95) on a warm app, every render reading
ConnectWise live (the response cache off), against the floor of one ConnectWise round trip (the reference hints
of the warm-up renders let the header, lines and references go at once), with the simulator adding latency to
every request. Goal: p50 <= 1.5 x latency + 25 ms. It prints the sequential rounds per render, counted from the
simulator's request log (requests that overlap in time are one round). Then the PDF figures from
bench/render_pdf.py (its main()), when that file is present.

`make bench-render` (defaults: 50 ms latency, 60 measured renders after 5 warm-up renders).

The app runs in-process against a private PostgreSQL and Redis (as the test harness starts them) and the simulator
on a loopback port, so "server time" is the request's time inside the app, without a browser or network in front.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

CLIENT_ID = "00000000-0000-4000-8000-0000000bench"
INVOICE = 3  # products and time entries: a typical invoice


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def round_trip_ms(sim, runs: int = 20) -> float:  # type: ignore[no-untyped-def]
    """One ConnectWise round trip as the simulator answers it (median of ``runs`` keep-alive GETs)."""
    import base64

    import httpx

    auth = base64.b64encode(f"{sim.company_id}+{sim.public_key}:{sim.private_key}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "clientId": CLIENT_ID}
    times = []
    with httpx.Client() as http:
        for _ in range(runs):
            t0 = time.perf_counter()
            http.get(f"{sim.api_url}/finance/invoices/{INVOICE}", headers=headers).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def sequential_rounds(records) -> int:  # type: ignore[no-untyped-def]
    """The most API requests that ran one after another (each arriving after the previous one was answered)."""
    spans = sorted(((r.time, r.time + r.duration_ms / 1000) for r in records if "/apis/3.0/" in r.path),
                   key=lambda span: span[1])
    count, free_at = 0, float("-inf")
    for start, end in spans:
        if start >= free_at:
            count, free_at = count + 1, end
    return count


def public_page(latency_ms: float, renders: int, warmup: int, cached: bool) -> None:
    import cwsim
    from app import create_app, dbadmin
    from app.audit.log import Actor
    from app.config import Config
    from app.connectwise.connection import save_connection
    from app.invoices.links import create_link
    from app.tenancy import tenant_session
    from app.tenants.service import create_tenant
    from devtools.services import start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-bench-render-"))
    stack = start_stack(root)
    sim = cwsim.serve_in_thread(port=0, invoices=100, latency_ms=latency_ms)
    try:
        dbadmin.upgrade(stack.owner_url, stack.app_url)
        cfg = Config(APP_ENV="test", DATABASE_URL=stack.app_url, REDIS_URL=stack.redis.url,
                     SECRET_KEY="bench-secret-key-" + "x" * 32, CONNECTWISE_CLIENT_ID=CLIENT_ID,
                     CONNECTWISE_CACHE_TTL_SECONDS=60 if cached else 0, RATE_LIMITS_ENABLED=False,
                     LOG_LEVEL="WARNING", LOG_FORMAT="text")
        app = create_app(cfg)
        factory = app.extensions["session_factory"]
        with app.app_context():
            session = factory()
            tenant = create_tenant(session, "Bench MSP", "owner" + chr(64) + "bench.example.com", "Bench Owner")
            session.commit()
            session.close()
            with tenant_session(tenant.id, factory) as session:
                save_connection(session, app.extensions["keyring"], tenant.id, site=sim.url,
                                company_id=sim.company_id, public_key=sim.public_key, private_key=sim.private_key,
                                allow_loopback_http=True, actor=Actor.system("bench"))
                token = create_link(session, tenant.id, INVOICE, actor=Actor.system("bench")).token
        client = app.test_client()
        for _ in range(warmup):
            assert client.get(f"/i/{token}").status_code == 200
        times, requests_per_render, rounds = [], [], []
        for _ in range(renders):
            before = len(sim.requests)
            t0 = time.perf_counter()
            response = client.get(f"/i/{token}")
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
            made = sim.requests[before:]
            requests_per_render.append(len(made))
            rounds.append(sequential_rounds(made))
        trip = round_trip_ms(sim)
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        goal = 1.5 * latency_ms + 25
        floor = latency_ms
        label = "cached (client cache on, 60 s)" if cached else "live (client cache off)"
        print(f"public page, {label}: {renders} renders of invoice {INVOICE} after {warmup} warm-up renders")
        print(f"  ConnectWise latency added    : {latency_ms:g} ms per request "
              f"(one measured round trip: {trip:.1f} ms)")
        print(f"  floor (1 round trip)         : {floor:.0f} ms nominal, {trip:.1f} ms measured")
        print(f"  server time p50 / p95        : {p50:.1f} ms / {p95:.1f} ms   "
              f"(p50 over the measured floor: {p50 - trip:+.1f} ms)")
        print(f"  ConnectWise requests / render: {statistics.mean(requests_per_render):.1f}")
        print(f"  sequential rounds / render   : {statistics.mean(rounds):.1f} "
              f"(most: {max(rounds)}, fewest: {min(rounds)})")
        if not cached:
            verdict = "PASS" if p50 <= goal else "FAIL"
            print(f"  goal p50 <= 1.5 x latency + 25 ms = {goal:.0f} ms: {verdict}")
        app.extensions["engine"].dispose()
    finally:
        sim.stop()
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def pdf_part() -> None:
    """bench/render_pdf.py's main() (the documents side: PDF times, WeasyPrint ratio), when present."""
    path = Path(__file__).with_name("render_pdf.py")
    if not path.exists():
        print("PDF part: bench/render_pdf.py is not there yet; skipped")
        return
    spec = importlib.util.spec_from_file_location("bench.render_pdf", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    saved = sys.argv
    sys.argv = [str(path)]  # its own defaults, not our arguments
    try:
        module.main()
    finally:
        sys.argv = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--renders", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--skip-pdf", action="store_true")
    parser.add_argument("--with-cache", action="store_true", help="also measure with the client cache on")
    args = parser.parse_args()
    public_page(args.latency_ms, args.renders, args.warmup, cached=False)
    if args.with_cache:
        public_page(args.latency_ms, args.renders, args.warmup, cached=True)
    if not args.skip_pdf:
        pdf_part()


if __name__ == "__main__":
    main()
