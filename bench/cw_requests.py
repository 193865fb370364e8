"""ConnectWise requests: line items of open invoices, batched (`invoice/id in (...)`, pageSize=1000, parallel)
against the naive way (one request per invoice per collection), both through the same client and the same
per-site ceiling, against the simulator with added latency. Prints requests per invoice, wall time, the ratio,
and the most requests the simulator saw in any 60-second window.

`make bench-cw` (defaults: 1,000 open invoices, 50 ms latency, ceiling 900 requests a minute).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Iterable

from app.connectwise.client import Client, Credentials
from app.connectwise.lines import COLLECTIONS, LineRecord, lines_for_invoices
from app.connectwise.ratelimit import SiteRateLimiter

CLIENT_ID = "00000000-0000-4000-8000-0000000bench"


def lines_naively(client: Client, invoice_ids: Iterable[int]) -> dict[int, list[LineRecord]]:
    """The way we don't do it (the baseline): one request per invoice per collection."""
    grouped: dict[int, list[LineRecord]] = defaultdict(list)
    for invoice_id in invoice_ids:
        for path, fields, parse in COLLECTIONS:
            for record in client.get_all(path, conditions=f"invoice/id={int(invoice_id)}", fields=fields):
                grouped[invoice_id].append(parse(record, tolerant=True))
    return grouped


def busiest_minute(times: list[float]) -> int:
    """The most requests inside any 60-second window (two pointers over sorted timestamps)."""
    times, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 60.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=1000, help="open invoices to reconstruct")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--ceiling", type=int, default=900, help="our requests per minute toward one site")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    import cwsim

    sim = cwsim.serve_in_thread(port=0, invoices=int(args.invoices * 1.6) + 20, latency_ms=args.latency_ms)
    limiter = SiteRateLimiter(None, args.ceiling, window=60.0, max_wait=600)
    creds = Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key)
    try:
        with Client(creds, CLIENT_ID, allow_loopback_http=True, rate_limiter=limiter, cache_ttl=0) as cw:
            cw.api_base  # noqa: B018 (discovery is shared by both ways; not counted)
            invoices = cw.get_all("finance/invoices", conditions="status/isClosed=false", fields=["id"])
            ids = [inv["id"] for inv in invoices][: args.invoices]
            if len(ids) < args.invoices:
                raise SystemExit(f"the simulator has only {len(ids)} open invoices")

            start_req, t0 = cw.requests_made, time.perf_counter()
            batched = lines_for_invoices(cw, ids)
            b_time, b_req = time.perf_counter() - t0, cw.requests_made - start_req
            lines = sum(len(v) for v in batched.values())
            print(f"open invoices                : {len(ids):,} ({lines:,} line items), latency {args.latency_ms:g} ms")
            print(f"batched   requests / invoice : {b_req / len(ids):.3f}  ({b_req} requests)   wall {b_time:.2f} s")
            if not args.skip_naive:
                start_req, t0 = cw.requests_made, time.perf_counter()
                naive = lines_naively(cw, ids)
                n_time, n_req = time.perf_counter() - t0, cw.requests_made - start_req
                assert sum(len(v) for v in naive.values()) == lines, "both ways must find the same lines"
                print(f"naive     requests / invoice : {n_req / len(ids):.3f}  ({n_req} requests)   wall {n_time:.2f} s")
                print(f"speed-up (naive / batched)   : {n_time / b_time:.1f}x   goal >= 10x; requests goal <= 0.1/invoice")
        api = [r.time for r in sim.requests if "/apis/3.0/" in r.path]
        print(f"busiest 60 s toward the site : {busiest_minute(api)} requests   ceiling {args.ceiling}, "
              "ConnectWise throttles past 1,000")
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
