"""Routing seeding benchmark: reviewers seeded from ConnectWise invoice routing after a tenant's first sweep, against
the simulator with added latency.

Prints the invoices waiting for routing, the ConnectWise requests the seeding made (one per invoice, ConnectWise has
no other way, plus the member names in batches of 200), wall time and the least that the share allows, and its
busiest minute against the half of the tenant's ceiling it may use. With ``--pages N`` a thread plays a person on the
pages (that many requests a minute on the tenant's shared budget, failing after 1 s of waiting, as pages do) while
the seeding runs, and prints how many of its requests were refused for want of budget (goal: none, while the pages
ask for less than the half routing leaves them).

``run(sim, services, tenant_id)`` is what ``bench/sweep.py`` calls after its sweeps (reviewers of a swept tenant).
`python -m bench.routing [--invoices 500] [--latency-ms 50] [--ceiling 900] [--pages 60]`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CLIENT_ID = "00000000-0000-4000-8000-0000000bench"


def run(sim: Any, services: Any, tenant_id: str) -> dict[str, Any]:
    """Seed the reviewers of the tenant's invoices waiting for routing; the figures of that run."""
    from app.review.routing import SHARE, seed_routing

    before = len(sim.requests)
    started = time.perf_counter()
    result = seed_routing(services, str(tenant_id))
    wall = time.perf_counter() - started
    ceiling = services.config.CONNECTWISE_MAX_REQUESTS_PER_MINUTE
    share = max(1, int(ceiling * SHARE))
    mine = [r.time for r in sim.requests[before:] if "/routings" in r.path or r.path.endswith("/system/members")]
    return {"outcome": result.outcome, "reason": result.reason, "invoices": result.invoices_pending,
            "seeded": result.invoices_seeded, "reviewers": result.reviewers_added, "left": result.invoices_left,
            "requests": result.cw_requests, "simulator_requests": len(mine), "seconds": wall,
            "busiest_minute": _busiest_minute(mine), "ceiling_per_minute": ceiling, "share_per_minute": share,
            # The share's window slides: `share` go at once, the next ones when the first slots free a minute later.
            "least_seconds": 60.0 * ((result.cw_requests - 1) // share)}


def _busiest_minute(times: list[float]) -> int:
    """The most of these moments within any 60 s."""
    times, most, first = sorted(times), 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 60.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def report(figures: dict[str, Any], indent: str = "") -> None:
    """Print ``run``'s figures, one line each."""
    from app.review.routing import CONCURRENCY

    print(f"{indent}routing seeding            : {figures['outcome']}"
          f"{' (' + figures['reason'] + ')' if figures.get('reason') else ''}; {figures['seeded']} of "
          f"{figures['invoices']} invoices seeded, {figures['reviewers']} reviewers, {figures['left']} left")
    print(f"{indent}  ConnectWise requests     : {figures['requests']} (the simulator saw "
          f"{figures['simulator_requests']}: one routing read per invoice, member names 200 a request)")
    print(f"{indent}  wall time                : {figures['seconds']:.2f} s (its share lets {figures['requests']} "
          f"requests finish no sooner than {figures['least_seconds']:.0f} s)")
    # Slots are taken when a request leaves and counted here when it arrives: the few in flight at a window's edge
    # may land inside the next minute, so arrivals may exceed the share by at most the requests in flight.
    ok = figures["busiest_minute"] <= figures["share_per_minute"] + CONCURRENCY
    print(f"{indent}  busiest minute           : {figures['busiest_minute']} requests arrived (its share: "
          f"{figures['share_per_minute']} of the tenant's {figures['ceiling_per_minute']}/min, taken as they leave; "
          f"goal <= share + {CONCURRENCY} in flight: {'PASS' if ok else 'FAIL'})")


def _pages(client_factory: Any, stop: threading.Event, out: dict[str, int], every: float) -> None:
    """A person on the pages: one small request each ``every`` s through a page client (1 s wait for a slot at most)."""
    from app.connectwise import errors

    while not stop.is_set():
        with client_factory() as client:
            try:
                client.get("system/info", cache=False)
                out["ok"] += 1
            except errors.Busy:
                out["busy"] += 1
            except errors.ConnectWiseError:
                out["failed"] += 1
        stop.wait(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--ceiling", type=int, default=900, help="the tenant's ConnectWise requests per minute")
    parser.add_argument("--pages", type=float, default=0.0, metavar="PER_MINUTE",
                        help="page requests per minute meanwhile (keep under half the ceiling): any refused?")
    args = parser.parse_args()

    import cwsim
    from app import create_app, dbadmin
    from app.audit.log import Actor
    from app.config import Config
    from app.connectwise.connection import save_connection
    from app.connectwise.tenant_client import tenant_client
    from app.review.sweep import run_sweep
    from app.services import services_of
    from app.tenancy import no_tenant_session, tenant_session
    from app.tenants.service import create_tenant
    from devtools.services import start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-bench-routing-"))
    stack = start_stack(root)
    sim = cwsim.serve_in_thread(port=0, invoices=args.invoices, latency_ms=args.latency_ms)
    try:
        dbadmin.upgrade(stack.owner_url, stack.app_url)
        cfg = Config(APP_ENV="test", DATABASE_URL=stack.app_url, REDIS_URL=stack.redis.url,
                     SECRET_KEY="bench-secret-key-" + "x" * 32, CONNECTWISE_CLIENT_ID=CLIENT_ID,
                     CONNECTWISE_MAX_REQUESTS_PER_MINUTE=args.ceiling,
                     CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE=max(6000, args.ceiling),
                     RATE_LIMITS_ENABLED=False, LOG_LEVEL="WARNING", LOG_FORMAT="text")
        app = create_app(cfg)
        services = services_of(app)
        with app.app_context():
            with no_tenant_session(services.session_factory) as session:
                tenant = create_tenant(session, "Bench MSP", "owner" + chr(64) + "bench.example.com", "Bench Owner")
            tid = str(tenant.id)
            with tenant_session(tid, services.session_factory) as session:
                save_connection(session, services.keyring, tid, site=sim.url, company_id=sim.company_id,
                                public_key=sim.public_key, private_key=sim.private_key, allow_loopback_http=True,
                                actor=Actor.system("bench"))
            swept = run_sweep(services, tid, kind="full")
            assert swept.outcome == "ok", (swept.outcome, swept.reason)
            print(f"simulator: {args.invoices} invoices seeded, {swept.invoices_seen} open; "
                  f"{args.latency_ms:g} ms added per request; ceiling {args.ceiling}/min")
            print(f"first full sweep           : {swept.cw_requests} requests (flags and inbox rows written before "
                  "routing starts)")
            services.redis.flushdb()  # the sweep's slots out of the window: routing's figure is its own

            def page_client() -> Any:
                with tenant_session(tid, services.session_factory) as session:
                    return tenant_client(session, services.keyring, services.config, services.redis)

            stop, seen = threading.Event(), {"ok": 0, "busy": 0, "failed": 0}
            person = threading.Thread(target=_pages, args=(page_client, stop, seen, 60.0 / max(args.pages, 1.0)),
                                      daemon=True)
            if args.pages:
                person.start()
            try:
                figures = run(sim, services, tid)
            finally:
                stop.set()
                if args.pages:
                    person.join(timeout=5)
            report(figures)
            if args.pages:
                print(f"  pages meanwhile          : {seen['ok']} answered, {seen['busy']} refused for want of "
                      f"budget, {seen['failed']} failed (goal: none refused: "
                      f"{'PASS' if seen['busy'] == 0 else 'FAIL'})")
        app.extensions["engine"].dispose()
    finally:
        sim.stop()
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
