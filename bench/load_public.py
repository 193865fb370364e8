"""Public links under load: 50 concurrent viewers of /i/<token> against gunicorn started with the Procfile's `web:`
command, several tenants each on its own simulated ConnectWise company (one host, 50 ms per request). Prints
throughput, p50/p95/p99 and errors (goal: 0 errors, p95 <= 500 ms). Then the same while one more tenant hammers its
own links at 10x the viewers' rate: prints the quiet tenants' p95 and its ratio to the quiet run (goal <= 1.5x).

`make bench-load` (defaults: 60 s per run, 50 viewers, 4 quiet tenants). `--seconds` shortens the runs.

Bounded and loopback only: PostgreSQL, Redis, the simulators and gunicorn listen on 127.0.0.1 under a temporary
folder and are stopped at the end. Each viewer sends its own X-Forwarded-For address (gunicorn runs with one
trusted proxy), so the per-IP limit sees 50 people, not one; the hammering tenant uses a handful of addresses, as
one customer's office or script would. The app runs with its production-like defaults (rate limits on, the 60 s
ConnectWise response cache on, the per-tenant budget and host valve from the config).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "00000000-0000-4000-8000-0000000bench"
INVOICES = (3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27)
VIEW_INTERVAL = 1.25  # seconds between one viewer's loads: under the per-link limit of 60 a minute
HAMMER_LINKS, HAMMER_ADDRESSES, HAMMER_THREADS = 10, 5, 40
GOAL_P95_MS, GOAL_RATIO = 500.0, 1.5


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def web_command() -> str:
    """The Procfile's `web:` line, read now (it changes), bound to loopback."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            command = line.split(":", 1)[1].strip()
            if "WEB_BIND_HOST" not in command:
                command = command.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 (replacing it, not binding it)
            return command
    raise SystemExit("Procfile has no web: line")


@dataclass
class Tally:
    """Latencies (ms) of 200 answers and a count of every status (or exception name)."""

    times: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    retried: int = 0  # stale keep-alive connections retried once (not errors: a browser does the same)

    def add(self, ms: float, status: int | str) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status == 200:
                self.times.append(ms)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return self.total - self.statuses.get(200, 0)


def _get(http: httpx.Client, path: str, tally: Tally) -> int | str:
    """One load; a keep-alive connection the server closed as we reused it is retried once, as browsers do."""
    for attempt in (1, 2):
        try:
            return http.get(path).status_code
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if attempt == 2:
                return type(exc).__name__
            with tally.lock:
                tally.retried += 1
        except httpx.HTTPError as exc:
            return type(exc).__name__
    return "unreachable"


def _loop(base: str, tokens: list[str], address: str, interval: float, until: float, tally: Tally) -> None:
    """Load the links in turn every ``interval`` seconds (paced, not back to back) until ``until``."""
    headers = {"X-Forwarded-For": address}
    with httpx.Client(base_url=base, timeout=30.0, headers=headers) as http:
        i, next_at = 0, time.monotonic()
        while time.monotonic() < until:
            started = time.monotonic()
            status = _get(http, f"/i/{tokens[i % len(tokens)]}", tally)
            tally.add((time.monotonic() - started) * 1000, status)
            i += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def run(base: str, viewers: list[tuple[str, str]], hammer: list[tuple[list[str], str, float]], seconds: float,
        ) -> tuple[Tally, Tally]:
    quiet, loud = Tally(), Tally()
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=_loop, args=(base, [token], address, VIEW_INTERVAL, until, quiet))
               for token, address in viewers]
    threads += [threading.Thread(target=_loop, args=(base, tokens, address, interval, until, loud))
                for tokens, address, interval in hammer]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    return quiet, loud


def report(label: str, tally: Tally, seconds: float) -> float:
    p50, p95, p99 = (percentile(tally.times, p) for p in (0.5, 0.95, 0.99))
    print(f"{label}: {tally.total} requests in {seconds:g} s = {tally.total / seconds:.1f}/s; "
          f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms; errors {tally.errors}, retried {tally.retried} "
          f"({dict(sorted((str(k), v) for k, v in tally.statuses.items()))})")
    return p95


def _start_sims(count: int, latency_ms: float, root: Path) -> list[tuple[subprocess.Popen, str, str]]:
    from devtools.services import free_port

    sims = []
    for n in range(count):
        port, company = free_port(), f"benchmsp{n}"
        log = open(root / f"cwsim-{n}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "cwsim", "--port", str(port), "--company", company,
                                 "--invoices", "60", "--latency-ms", str(latency_ms)], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        sims.append((proc, f"http://127.0.0.1:{port}", company))
    for _proc, url, _company in sims:
        _wait(f"{url}/login/companyinfo/none", any_status=True)
    return sims


def _wait(url: str, timeout: float = 60.0, any_status: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any_status or httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s")


def _tenants(env: dict[str, str], sims: list[tuple[subprocess.Popen, str, str]], links_per_tenant: list[int],
             ) -> list[list[str]]:
    """One tenant per simulator, connected to it, with the given number of public links each; their tokens."""
    from app import create_app
    from app.audit.log import Actor
    from app.config import Config
    from app.connectwise.connection import save_connection
    from app.invoices.links import create_link
    from app.tenancy import tenant_session
    from app.tenants.service import create_tenant

    cfg = Config(APP_ENV="test", DATABASE_URL=env["DATABASE_URL"], REDIS_URL=env["REDIS_URL"],
                 SECRET_KEY=env["SECRET_KEY"], CONNECTWISE_CLIENT_ID=CLIENT_ID, LOG_LEVEL="WARNING",
                 LOG_FORMAT="text", ENCRYPTION_KEYS=env["ENCRYPTION_KEYS"])
    app = create_app(cfg)
    factory, system = app.extensions["session_factory"], Actor.system("bench")
    tokens: list[list[str]] = []
    with app.app_context():
        for n, ((_proc, url, company), count) in enumerate(zip(sims, links_per_tenant, strict=True)):
            session = factory()
            tenant = create_tenant(session, f"Load MSP {n}", f"owner{n}" + chr(64) + "load.example.com", "Owner")
            session.commit()
            session.close()
            with tenant_session(tenant.id, factory) as session:
                save_connection(session, app.extensions["keyring"], tenant.id, site=url, company_id=company,
                                public_key="simpublic", private_key="simprivate", allow_loopback_http=True,
                                actor=system)
                tokens.append([create_link(session, tenant.id, INVOICES[i % len(INVOICES)], actor=system).token
                               for i in range(count)])
    app.extensions["engine"].dispose()
    return tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each run (default 60)")
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=4, help="quiet tenants sharing the viewers")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    if not 1 <= args.seconds <= 600 or not 1 <= args.viewers <= 200 or not 1 <= args.tenants <= 20:
        raise SystemExit("--seconds 1..600, --viewers 1..200, --tenants 1..20")

    import base64

    from app import dbadmin
    from devtools.services import free_port, start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-bench-load-"))
    stack = start_stack(root)
    sims: list[tuple[subprocess.Popen, str, str]] = []
    web: subprocess.Popen | None = None
    try:
        dbadmin.upgrade(stack.owner_url, stack.app_url)
        port = free_port()
        env = {**os.environ, **stack.env, "APP_ENV": "test", "PORT": str(port), "WEB_BIND_HOST": "127.0.0.1",
               "SECRET_KEY": "bench-load-secret-" + "x" * 32, "CONNECTWISE_CLIENT_ID": CLIENT_ID,
               "ENCRYPTION_KEYS": "bench1:" + base64.b64encode(os.urandom(32)).decode(),
               "TRUSTED_PROXY_COUNT": "1", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text",
               "BASE_URL": f"http://127.0.0.1:{port}", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        sims = _start_sims(args.tenants + 1, args.latency_ms, root)
        per_tenant = [len(range(t, args.viewers, args.tenants)) for t in range(args.tenants)]
        tokens = _tenants(env, sims, [*per_tenant, HAMMER_LINKS])
        command = web_command()
        print(f"web: {command}  (PORT={port}, WEB_BIND_HOST=127.0.0.1)", flush=True)
        web = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, start_new_session=True,
                               stdout=open(root / "web.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/healthz")
        viewers = [(tokens[v % args.tenants][v // args.tenants], f"10.1.{v // 250}.{v % 250 + 1}")
                   for v in range(args.viewers)]
        warm = Tally()
        for token, address in viewers + [(t, "10.9.0.1") for t in tokens[-1]]:
            with httpx.Client(base_url=base, timeout=30, headers={"X-Forwarded-For": address}) as http:
                warm.add(0, http.get(f"/i/{token}").status_code)
        print(f"warm-up: one load of every link ({dict(warm.statuses)}); ConnectWise latency {args.latency_ms:g} ms, "
              f"{args.tenants} quiet tenants + 1 loud, each on its own company on one host", flush=True)

        quiet, _ = run(base, viewers, [], args.seconds)
        quiet_p95 = report(f"quiet: {args.viewers} viewers", quiet, args.seconds)
        verdict = "PASS" if quiet.errors == 0 and quiet_p95 <= GOAL_P95_MS else "FAIL"
        print(f"  goal 0 errors and p95 <= {GOAL_P95_MS:.0f} ms: {verdict}", flush=True)

        quiet_rate = args.viewers / VIEW_INTERVAL
        interval = HAMMER_THREADS / (10 * quiet_rate)
        hammer = [(tokens[-1][n % HAMMER_LINKS::HAMMER_LINKS], f"10.66.0.{n % HAMMER_ADDRESSES + 1}", interval)
                  for n in range(HAMMER_THREADS)]
        others, loud = run(base, viewers, hammer, args.seconds)
        print(f"hammer: one tenant loads its {HAMMER_LINKS} links at {10 * quiet_rate:.0f}/s "
              f"(10 x the viewers' {quiet_rate:.0f}/s) from {HAMMER_ADDRESSES} addresses")
        others_p95 = report("  the other tenants' viewers", others, args.seconds)
        report("  the hammering tenant", loud, args.seconds)
        ratio = others_p95 / quiet_p95 if quiet_p95 else float("nan")
        verdict = "PASS" if ratio <= GOAL_RATIO and others.errors == 0 else "FAIL"
        print(f"  other tenants' p95 {others_p95:.0f} ms vs quiet {quiet_p95:.0f} ms: ratio {ratio:.2f} "
              f"(goal <= {GOAL_RATIO}): {verdict}")
        return 0
    finally:
        if web is not None and web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            try:
                web.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
        for proc, _url, _company in sims:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
