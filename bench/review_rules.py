"""Review rules time per invoice over the simulator's invoices. Goal: <= 2 ms per invoice.

Every invoice is read once through the real pipeline (``fetch_payloads``) from an in-process simulator, then
``evaluate`` is timed per invoice (p50, p95, max and mean) with the shipped settings and with every rule on (watch
lists filled), both from the payloads as fetched and from a stored snapshot's JSON (``from_json`` included), which
is what a settings change re-evaluates. The fetch is not timed: it is the sweep's cost, measured elsewhere.

``python -m bench.review_rules [--invoices 1000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

CLIENT_ID = "00000000-0000-4000-8000-0000000bench"
GOAL_MS = 2.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over every invoice")
    args = parser.parse_args()

    import cwsim
    from app.connectwise.client import Client, Credentials
    from app.invoices.service import InvoicePayloads, fetch_payloads
    from app.review.rules import RULES, build_history, default_settings, evaluate

    sim = cwsim.serve_in_thread(port=0, invoices=args.invoices)
    try:
        credentials = Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key)
        with Client(credentials, CLIENT_ID, allow_loopback_http=True, sleep=lambda s: None) as cw:
            payloads = [fetch_payloads(cw, i) for i in sim.state.data["invoices"].ids()]
    finally:
        sim.stop()
    stored = [p.to_json() for p in payloads]
    started = time.perf_counter()
    history = build_history((), payloads)
    history_ms = (time.perf_counter() - started) * 1000
    everything = default_settings()
    for key in RULES:
        everything[key]["enabled"] = True
    everything["keyword"]["keywords"] = ["TODO", "internal", "do not send"]
    everything["flagged_work_type"]["work_types"] = ["After Hours"]

    lines = sum(len(p.collections.get(k) or ()) for p in payloads
                for k in ("procurement/products", "time/entries", "expense/entries"))
    print(f"review rules over {len(payloads)} simulator invoices ({lines / len(payloads):.1f} lines per invoice), "
          f"{args.repeat} passes; build_history once: {history_ms:.1f} ms")
    worst = 0.0
    for label, settings in (("shipped settings", None), ("every rule on", everything)):
        for source in ("fetched payloads", "stored snapshot JSON"):
            times: list[float] = []
            findings = 0
            for _ in range(args.repeat):
                for p, text in zip(payloads, stored, strict=True):
                    t0 = time.perf_counter()
                    value = InvoicePayloads.from_json(text) if source != "fetched payloads" else p
                    found = evaluate(value, settings, history)
                    times.append((time.perf_counter() - t0) * 1000)
                    findings += len(found)
            p50, p95, mean = percentile(times, 0.5), percentile(times, 0.95), statistics.fmean(times)
            worst = max(worst, mean)
            print(f"  {label:16} from {source:21} p50 {p50:.3f} ms  p95 {p95:.3f} ms  max {max(times):.3f} ms  "
                  f"mean {mean:.3f} ms  ({findings // args.repeat} findings)")
    print(f"goal: <= {GOAL_MS} ms per invoice (mean) -> {'met' if worst <= GOAL_MS else 'NOT met'} "
          f"(worst mean {worst:.3f} ms)")


if __name__ == "__main__":
    main()
