"""RLS overhead: one tenant's page of 50 (filtered, sorted) as the app role under forced RLS, against the same
query run by the owner with an explicit ``WHERE tenant_id = ...`` and RLS not forced. Prints both and the ratio.

`make bench-rls` (private servers in a temporary folder; 100 tenants, 1,000,000 audit rows by default).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

QUERY = """select id, created_at, actor_label, action, target_type, target_id
           from audit_log where {tenant_filter} action = any(%(actions)s) and created_at >= %(since)s
           order by id desc limit 50"""
ACTIONS = ["settings.changed", "user.role_changed", "connectwise.connected"]


def seed(owner_url: str, tenants: int, rows: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(tenants)]
    per_tenant = rows // tenants
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("alter table tenants no force row level security")
        conn.execute("alter table audit_log no force row level security")
        with conn.cursor() as cur:
            cur.executemany("insert into tenants (id, name) values (%s, %s)", [(t, f"Tenant {i}") for i, t in
                                                                                enumerate(ids)])
        actions = ACTIONS + ["invoice.viewed", "review.approved", "sign_in", "sign_out"]
        # Interleave tenants in id order the way real appends arrive, so no tenant's rows are contiguous.
        conn.execute("""
            insert into audit_log (tenant_id, created_at, actor_type, actor_label, action, target_type, target_id,
                                   prev_hash, hash)
            select t.ids[1 + mod(g, %(n)s)], now() - (g || ' seconds')::interval, 'user', 'someone@example.com',
                   (%(actions)s::text[])[1 + mod(g * 7, %(na)s)], 'invoice', mod(g, 5000)::text, repeat('0', 64), md5(g::text)
            from generate_series(1, %(rows)s) g, (select %(ids)s::uuid[] as ids) t""",
                     {"n": tenants, "rows": per_tenant * tenants, "ids": ids, "actions": actions,
                      "na": len(actions)})
        conn.execute("analyze audit_log")
        conn.execute("analyze tenants")
    return ids


def measure(url: str, tenant_ids: list[str], as_owner: bool, runs: int) -> list[float]:
    timings = []
    params = {"actions": ACTIONS, "since": "2000-01-01"}
    with psycopg.connect(url) as conn:
        for i in range(runs):
            tenant = tenant_ids[i % len(tenant_ids)]
            with conn.transaction():
                if as_owner:
                    sql = QUERY.format(tenant_filter="tenant_id = %(tenant)s and")
                    start = time.perf_counter()
                    rows = conn.execute(sql, {**params, "tenant": tenant}).fetchall()
                else:
                    conn.execute("select set_config('app.tenant_id', %s, true)", (tenant,))
                    start = time.perf_counter()
                    rows = conn.execute(QUERY.format(tenant_filter=""), params).fetchall()
                timings.append((time.perf_counter() - start) * 1000)
            assert len(rows) == 50, f"expected a full page, got {len(rows)}"
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()

    from app import dbadmin
    from devtools.services import start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-bench-"))
    stack = start_stack(root)
    try:
        dbadmin.upgrade(stack.owner_url, stack.app_url)
        t0 = time.perf_counter()
        ids = seed(stack.owner_url, args.tenants, args.rows)
        print(f"seeded {args.rows:,} audit rows across {args.tenants} tenants in {time.perf_counter() - t0:.1f}s")
        with psycopg.connect(stack.owner_url, autocommit=True) as conn:
            conn.execute("alter table tenants force row level security")
            conn.execute("alter table audit_log force row level security")
        # Warm both paths, then interleave rounds so machine noise hits both alike.
        measure(stack.app_url, ids, False, 50)
        app_t, owner_t = [], []
        for _ in range(4):
            app_t += measure(stack.app_url, ids, False, args.runs // 4)
            with psycopg.connect(stack.owner_url, autocommit=True) as conn:
                conn.execute("alter table audit_log no force row level security")
            owner_t += measure(stack.owner_url, ids, True, args.runs // 4)
            with psycopg.connect(stack.owner_url, autocommit=True) as conn:
                conn.execute("alter table audit_log force row level security")
        app_med, owner_med = statistics.median(app_t), statistics.median(owner_t)
        print(f"app role, RLS forced        : median {app_med:.3f} ms  p95 {_p95(app_t):.3f} ms  (n={len(app_t)})")
        print(f"owner, explicit tenant_id   : median {owner_med:.3f} ms  p95 {_p95(owner_t):.3f} ms  (n={len(owner_t)})")
        print(f"ratio (RLS / explicit)      : {app_med / owner_med:.3f}   goal <= 1.10")
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


if __name__ == "__main__":
    main()
