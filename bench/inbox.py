"""Review inbox benchmark: one tenant with 10,000 open invoices (inbox rows) and 60,000 flags beside 99 other
tenants with a few hundred rows each; server time of the inbox's queries as the app role under forced RLS (the
functions of ``app.review.inbox``) and of whole requests through the Flask test client (signed in, the htmx list
and the full page), p50 and p95 of N runs each; then EXPLAIN (ANALYZE, BUFFERS) of every query with the indexes
it used. Goal (issue 12): p95 <= 150 ms for the first page of each tab, a search, a filter and the counts.

`make bench-inbox` (private PostgreSQL and Redis in a temporary folder; seeding is bulk SQL as the owner, one
transaction per tenant with its tenant set, so the policies hold for the seed too). Options: --runs, --tenants,
--open, --flags.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

GOAL_MS = 150.0
STATUSES = [(1, "New"), (2, "Ready for Review"), (3, "Approved"), (4, "Needs Correction"), (5, "On Hold")]
TYPES = ["Standard", "Agreement", "Project", "Fixed Fee", "Credit Memo", "Sales Order", "Phase", "Miscellaneous"]
WORDS = ["Harbor", "Cedar", "Blue Ridge", "Juniper", "Evergreen", "Summit", "Lakeside", "Meridian", "Pioneer",
         "Quarry", "Delta", "Ironwood", "Kestrel", "Oakmont", "Sakura", "Van Dijk", "Werkstatt", "Fairview",
         "Tidewater", "Northwind"]
KINDS = ["Dental", "Logistics", "Law Partners", "Credit Union", "Medical", "Realty", "Architects", "Foods",
         "Insurance", "Veterinary Clinics", "Accounting", "Hotel Group", "Charter School", "Aerospace"]


def _seed_tenant(conn: psycopg.Connection, tenant_id: str, open_rows: int, left_rows: int, flags: int,
                 users: list[str], reviewer_share: float) -> None:
    """Bulk rows for one tenant in one transaction with its tenant set (so RLS checks the seed as well)."""
    args = {"t": tenant_id, "open": open_rows, "left": left_rows, "flags": flags, "words": WORDS, "kinds": KINDS,
            "types": TYPES, "sids": [s for s, _ in STATUSES], "snames": [n for _, n in STATUSES],
            "users": users, "share": reviewer_share}
    with conn.transaction():
        conn.execute("select set_config('app.tenant_id', %s, true)", (tenant_id,))
        # Open invoices (states mixed as a month-end looks), then invoices that left the open set (sent or closed).
        conn.execute("""
            insert into review_invoices (id, tenant_id, invoice_id, invoice_number, company_name, display_type, total,
                currency, status_id, status_name, invoice_date, due_date, time_count, product_count, expense_count,
                open, left_open_at, state, state_at, changed_at, first_seen_at)
            select gen_random_uuid(), %(t)s, g, 'INV-' || (10000 + g),
                   (%(words)s::text[])[1 + (g * 7) %% 20] || ' ' || (%(kinds)s::text[])[1 + (g * 13) %% 14],
                   (%(types)s::text[])[1 + (g * 3) %% 8], round((random() * 9000)::numeric, 2),
                   case when g %% 17 = 0 then 'EUR' else 'USD' end,
                   (%(sids)s::int[])[1 + g %% 5], (%(snames)s::text[])[1 + g %% 5],
                   current_date - (g %% 365), current_date - (g %% 365) + 30, g %% 40, g %% 9, g %% 4,
                   g <= %(open)s, case when g > %(open)s then now() - ((g %% 120) || ' days')::interval end,
                   case when g %% 10 < 6 then 'needs_review' when g %% 10 < 8 then 'approved'
                        when g %% 10 < 9 then 'rejected' else 'closed' end,
                   case when g %% 10 >= 6 then now() - ((g %% 60) || ' days')::interval end,
                   now() - ((g %% 30) || ' days')::interval, now() - interval '200 days'
            from generate_series(1, %(open)s + %(left)s) g""", args)
        conn.execute("""
            insert into review_flags (id, tenant_id, invoice_id, invoice_number, rule, target_type, target_id, severity,
                message_enc, first_seen, last_seen, cleared_at, marked_ok_at)
            select gen_random_uuid(), %(t)s, i, 'INV-' || (10000 + i), 'rule_' || (g %% 12), 'product', g,
                   case when g %% 20 < 3 then 'error' when g %% 20 < 12 then 'warning' else 'info' end,
                   '\\x00'::bytea, now(), now(), case when g %% 10 = 0 then now() end,
                   case when g %% 20 = 1 then now() end
            from (select g, 1 + floor(power(random(), 2) * %(open)s)::int as i
                  from generate_series(1, %(flags)s) g) s""", args)
        # The inbox row's flag summary, as app.review.summary.refresh_flags keeps it.
        conn.execute("""
            update review_invoices r set open_flags = c.n, blocking_flags = c.blocking, worst_flag = c.worst
            from (select invoice_id, count(*) n, count(*) filter (where severity in ('error', 'warning')) blocking,
                         max(case severity when 'error' then 3 when 'warning' then 2 else 1 end) worst
                  from review_flags where cleared_at is null and marked_ok_at is null group by invoice_id) c
            where r.invoice_id = c.invoice_id and r.open""")
        conn.execute("""
            insert into review_reviewers (id, tenant_id, invoice_id, member_id, name, state, source)
            select gen_random_uuid(), %(t)s, g, 100 + g %% 15, 'Member ' || (g %% 15), 'waiting', 'routing'
            from generate_series(1, %(open)s) g""", args)
        if users:
            conn.execute("""
                insert into review_reviewers (id, tenant_id, invoice_id, user_id, name, state, source)
                select gen_random_uuid(), %(t)s, g, (%(users)s::uuid[])[1 + g %% cardinality(%(users)s::uuid[])],
                       'Reviewer ' || (1 + g %% cardinality(%(users)s::uuid[])), 'waiting', 'routing'
                from generate_series(1, %(open)s) g where random() < %(share)s""", args)
            conn.execute("""
                insert into review_reads (id, tenant_id, invoice_id, user_id, read_at)
                select gen_random_uuid(), %(t)s, g, (%(users)s::uuid[])[1], now() - ((g %% 40) || ' days')::interval
                from generate_series(1, %(open)s) g where g %% 5 < 2""", args)
        conn.execute("""insert into review_sweeps (id, tenant_id, kind, started_at, finished_at, invoices_seen, outcome)
                        values (gen_random_uuid(), %(t)s, 'full', now(), now(), %(open)s, 'ok')""", args)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _line(name: str, ms: list[float]) -> str:
    p50, p95 = statistics.median(ms), _p(ms, 0.95)
    verdict = "PASS" if p95 <= GOAL_MS else "FAIL"
    return f"  {name:<34} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   ({verdict}, n={len(ms)})"


INDEX = re.compile(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)")


def setup(stack: Any, tenants: int, open_rows: int, flags: int, others: int) -> tuple[Any, str, list[str]]:
    """The app on the stack's servers and the seeded tenants: (app, the measured tenant's id, its user ids with
    the owner first)."""
    from app import create_app, dbadmin
    from app.audit.log import Actor
    from app.config import Config
    from app.connectwise.connection import save_connection
    from app.services import services_of
    from app.tenancy import no_tenant_session, tenant_session
    from app.tenants.service import create_tenant
    from app.users.models import User

    dbadmin.upgrade(stack.owner_url, stack.app_url)
    cfg = Config(APP_ENV="test", DATABASE_URL=stack.app_url, REDIS_URL=stack.redis.url,
                 SECRET_KEY="bench-secret-key-" + "x" * 32, CONNECTWISE_CLIENT_ID=str(uuid.uuid4()),
                 RATE_LIMITS_ENABLED=False, LOG_LEVEL="WARNING", LOG_FORMAT="text")
    app = create_app(cfg)
    services = services_of(app)
    t0 = time.perf_counter()
    ids: list[str] = []
    with app.app_context():
        for n in range(tenants):
            with no_tenant_session(services.session_factory) as session:
                made = create_tenant(session, f"Bench MSP {n}", f"owner{n}" + chr(64) + "bench.example.com", "Owner")
                ids.append(str(made.id))
        big = ids[0]
        with tenant_session(big, services.session_factory) as session:
            # A connection that is never called (the inbox reads our tables only); loopback needs no DNS.
            save_connection(session, services.keyring, big, site="http://127.0.0.1:9", company_id="bench",
                            public_key="bench-public", private_key="bench-private", allow_loopback_http=True,
                            actor=Actor.system("bench"))
            owner = session.query(User).filter(User.role == "owner").one()
            users = [str(owner.id)]
            for k in range(4):
                extra = User(id=uuid.uuid4(), tenant_id=uuid.UUID(big), email=f"r{k}" + chr(64) + "bench.example.com",
                             name=f"Reviewer {k}", role="reviewer")
                session.add(extra)
                users.append(str(extra.id))
    rows = flag_rows = 0
    with psycopg.connect(stack.owner_url) as conn:
        for tid in ids:
            mine = tid == big
            _seed_tenant(conn, tid, open_rows if mine else others, (open_rows if mine else others) // 5,
                         flags if mine else others * 6, users if mine else [], 0.3)
            with conn.transaction():
                conn.execute("select set_config('app.tenant_id', %s, true)", (tid,))
                counted = conn.execute("select (select count(*) from review_invoices), "
                                       "(select count(*) from review_flags)").fetchone()
            assert counted is not None
            rows, flag_rows = rows + counted[0], flag_rows + counted[1]
        conn.autocommit = True
        for table in ("review_invoices", "review_flags", "review_reviewers", "review_reads", "review_sweeps"):
            conn.execute(f"analyze {table}")  # our own fixed table names
    print(f"seeded in {time.perf_counter() - t0:.1f} s: {tenants} tenants, {rows:,} inbox rows and {flag_rows:,} "
          f"flags in all; the measured tenant has {open_rows:,} open invoices (+{open_rows // 5:,} that left), "
          f"{flags:,} flags, reviewers on every invoice, read marks on 40%")
    return app, big, users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--flags", type=int, default=60_000)
    parser.add_argument("--others", type=int, default=300, help="open rows per other tenant")
    args = parser.parse_args()

    from sqlalchemy.dialects import postgresql

    from app.review import inbox
    from app.services import services_of
    from app.tenancy import tenant_session
    from devtools.services import start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-bench-inbox-"))
    stack = start_stack(root)
    try:
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
              "(other work on the machine inflates every figure below)")
        app, big, users = setup(stack, args.tenants, args.open, args.flags, args.others)
        services = services_of(app)
        me = uuid.UUID(users[0])
        now = dt.datetime.now(dt.UTC)
        cases: dict[str, inbox.InboxQuery] = {f"first page: {label}": inbox.InboxQuery(tab=tab)
                                              for tab, label in inbox.TABS.items()}
        cases.update({
            "search number '#INV-1234'": inbox.InboxQuery(tab="all", search=inbox.clean_search("#INV-1234")),
            "search company 'dental'": inbox.InboxQuery(tab="all", search="dental"),
            "filter status 'Ready for Review'": inbox.InboxQuery(tab="all", status_id=2),
            "filter type 'Agreement'": inbox.InboxQuery(display_type="Agreement"),
            "filter only mine + unread": inbox.InboxQuery(tab="all", mine=True, unread=True),
            "filter reviewer (member)": inbox.InboxQuery(tab="all", reviewer="m-107"),
            "all, sorted by amount": inbox.InboxQuery(tab="all", sort="amount", desc=True),
            "all, sorted by worst flag": inbox.InboxQuery(tab="all", sort="flag", desc=True),
            "needs review, page 40": inbox.InboxQuery(page=40),
        })
        print(f"\nqueries as the app role under RLS (the tenant's session), {args.runs} runs each")
        factory = services.session_factory
        with tenant_session(big, factory) as session:
            print(_line("counts (all six tabs, one query)",
                        _timed(lambda: inbox.counts(session, inbox.InboxQuery(), me, now), args.runs)))
            print(_line("counts with search 'dental'",
                        _timed(lambda: inbox.counts(session, inbox.InboxQuery(search="dental"), me, now), args.runs)))
            for name, query in cases.items():
                print(_line(name, _timed(lambda q=query: inbox.page_rows(session, q, me, now, q.page),  # type: ignore[misc]
                                         args.runs)))
            print(_line("filter choices (statuses, reviewers)", _timed(lambda: inbox.options(session), args.runs)))

        client = app.test_client()
        with client.session_transaction() as sess:
            sess["_user_id"] = f"{big}:{me}"
            sess["_fresh"] = True
        requests = {"GET /review/sweep/progress (yardstick)": ("/review/sweep/progress", {"HX-Request": "true"}),
                    "GET /review/ (full page)": ("/review/", {}),
                    "GET /review/?tab=all (full page)": ("/review/?tab=all", {}),
                    "GET /review/ (htmx list)": ("/review/", {"HX-Request": "true"}),
                    "GET /review/?tab=flagged (htmx)": ("/review/?tab=flagged", {"HX-Request": "true"}),
                    "GET /review/?tab=all&q=dental (htmx)": ("/review/?tab=all&q=dental", {"HX-Request": "true"}),
                    "GET /review/?tab=all&status=2 (htmx)": ("/review/?tab=all&status=2", {"HX-Request": "true"})}
        print(f"\nwhole requests through the Flask test client (server time, signed in), {args.runs // 2} runs each; "
              "the yardstick is a small signed-in page (sign-in, tenant, one panel), for what any request costs here")
        for name, (url, headers) in requests.items():
            def get(url: str = url, headers: dict = headers) -> None:
                response = client.get(url, headers=headers)
                assert response.status_code == 200, (url, response.status_code)
            print(_line(name, _timed(get, args.runs // 2)))

        print(f"load average after the timings: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("\nEXPLAIN (ANALYZE, BUFFERS) as the app role under RLS")
        dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
        statements = {"counts": inbox.counts_statement(inbox.InboxQuery(), me, now)}
        statements.update({name: inbox.page_statement(q, me, now, q.page) for name, q in cases.items()})
        statements.update({"filter choices: statuses and worst flags": inbox.status_summary_statement(),
                           "filter choices: reviewers": inbox.reviewer_choices_statement()})
        with tenant_session(big, factory) as session:
            raw = session.connection()
            for name, stmt in statements.items():
                compiled = stmt.compile(dialect=dialect)
                plan = [r[0] for r in raw.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + str(compiled),
                                                          compiled.params).fetchall()]
                used = sorted(set(INDEX.findall("\n".join(plan))))
                seq = [line.strip() for line in plan if "Seq Scan" in line]
                took = next((line for line in plan if line.startswith("Execution Time")), "")
                print(f"\n-- {name}: {took}; indexes used: {', '.join(used) or 'NONE'}"
                      f"{'; SEQ SCAN: ' + '; '.join(seq) if seq else ''}")
                for line in plan:
                    print("   " + line)
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
