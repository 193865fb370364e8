"""`make dev`: private PostgreSQL + Redis under var/, migrate, seed a demo tenant connected to the ConnectWise
simulator, run web + worker + simulator, print the URL and a sign-in link; Ctrl-C stops all of it.

The terminal shows only our own lines (progress, the banner, mail from the development outbox such as sign-in
codes); everything the web, worker, simulator and OpenID provider print goes to var/log/<name>.log.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOG_DIR = VAR / "log"
DEMO_EMAIL = "owner@demo-msp.example"
OUTBOX_START = "[outbox] "
OUTBOX_MAX_LINES = 60
# A line our processes log (app TextFormatter, werkzeug, flask's own start lines) ends an outbox block.
_LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|\{\"ts\"|\S+ - - \[| \* )")


def route_output(lines: Iterable[str], log: TextIO, terminal: TextIO) -> None:
    """Send a child's lines to its log file, except mail from the development outbox, which goes to the terminal
    only: it is what the person at the terminal needs (the sign-in code), and codes are never kept in a log."""
    outbox_left = 0
    for line in lines:
        if line.startswith(OUTBOX_START):
            outbox_left = OUTBOX_MAX_LINES
            terminal.write("\n")
        elif outbox_left and _LOG_LINE.match(line):
            outbox_left = 0
        if outbox_left:
            outbox_left -= 1
            terminal.write(line)
            terminal.flush()
        else:
            log.write(line)
            log.flush()


def _spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a child in its own session (Ctrl-C reaches only us; we stop it), its output routed to var/log/."""
    log = open(LOG_DIR / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed by the pump at EOF)
    child = subprocess.Popen(args, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                             start_new_session=True)

    def pump() -> None:
        with log:
            route_output(child.stdout, log, sys.stdout)  # type: ignore[arg-type]

    threading.Thread(target=pump, name=f"log-{name}", daemon=True).start()
    return child


@contextlib.contextmanager
def _own_terminal() -> Iterator[None]:
    """Be the terminal's foreground process group while we run, so Ctrl-C reaches us and not `make`, which would
    otherwise report "Interrupt" and exit 130 however cleanly we stop; give the terminal back afterwards."""
    try:
        fd = sys.stdin.fileno()
        previous = os.tcgetpgrp(fd) if os.isatty(fd) and os.getpgrp() != os.getpid() else None
    except (OSError, ValueError):
        previous = None
    if previous is None:
        yield
        return
    quiet = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not set the foreground
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(fd, os.getpgrp())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, previous)
        signal.signal(signal.SIGTTOU, quiet)


def _port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            pass
    from devtools.services import free_port

    return free_port()


def _secrets() -> dict[str, str]:
    path = VAR / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {"SECRET_KEY": secrets.token_urlsafe(48),
              "ENCRYPTION_KEYS": "dev-" + secrets.token_hex(3) + ":" + base64.b64encode(os.urandom(32)).decode()}
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"flask {' '.join(args[:2])} failed:\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def _wait_http(url: str, name: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f}s (see var/log/{name}.log)")


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Installed explicitly: a SIGINT ignored by whoever started us (a background job) would otherwise stay ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    with _own_terminal():
        status = _run()
    return status


def _run() -> int:
    from devtools.services import start_stack

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    stack = sso = None
    try:
        print("Starting PostgreSQL and Redis under var/ ...", flush=True)
        stack = start_stack(VAR, persist=True)
        if stack.new_cluster:
            (VAR / "demo.json").unlink(missing_ok=True)  # its tenant lived in the cluster that is gone
        web_port, sim_port = _port(int(os.environ.get("PORT", "5000"))), _port(8765)
        env = {**os.environ, **stack.env, **_secrets(), "APP_ENV": "development", "LOG_FORMAT": "text",
               "BASE_URL": f"http://127.0.0.1:{web_port}",
               "CONNECTWISE_CLIENT_ID": os.environ.get("CONNECTWISE_CLIENT_ID", "00000000-0000-4000-8000-00000000dev0")}
        sso = _dev_sso(env)
        print("Migrating ...", flush=True)
        _flask(env, "db", "upgrade")

        print("Starting the ConnectWise simulator, web and worker (their logs: var/log/) ...", flush=True)
        children["cwsim"] = _spawn("cwsim", [sys.executable, "-m", "cwsim", "--port", str(sim_port)], env)
        _wait_http(f"http://127.0.0.1:{sim_port}/login/companyinfo/bettersim", "cwsim")
        demo = _seed_demo(env, sim_port)

        children["web"] = _spawn("web", [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--host", "127.0.0.1",
                                         "--port", str(web_port), "--no-reload"], env)
        children["worker"] = _spawn("worker", [sys.executable, "worker.py"], env)
        _wait_http(f"http://127.0.0.1:{web_port}/healthz", "web")
        link = _flask(env, "dev", "sign-in-link", demo["tenant_id"], DEMO_EMAIL)
        print("\n" + "=" * 72)
        print(f"  Better Invoice is running at http://127.0.0.1:{web_port}")
        print(f"  Demo tenant: Demo MSP ({demo['tenant_id']}), owner {DEMO_EMAIL}")
        print(f"  Sign in (development link, valid 12 h):\n    {link}")
        print("  Or enter the owner's email: the code appears here (and at /dev/outbox).")
        print(f"  ConnectWise simulator: http://127.0.0.1:{sim_port}")
        if sso is not None:
            print(f"  'Continue with Google' signs in as {DEMO_EMAIL} through a local OpenID provider ({sso.url})")
        print("  Logs: var/log/web.log, worker.log, cwsim.log, oidc.log")
        print("  Ctrl-C stops web, worker, simulator, PostgreSQL and Redis.")
        print("=" * 72 + "\n", flush=True)
        watched = {**children, **({"oidc": sso.process} if sso is not None else {})}
        while all(child.poll() is None for child in watched.values()):
            time.sleep(0.5)
        time.sleep(1)  # a Ctrl-C that also reached a child lands here, and is a stop, not a failure
        for name, child in watched.items():
            if child.poll() is not None:
                print(f"{name} exited with status {child.returncode} (see var/log/{name}.log); stopping everything.",
                      flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        with _signals_held():
            _stop(children, sso, stack)
        print("stopped", flush=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """A second Ctrl-C while stopping must not leave PostgreSQL or Redis running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _stop(children: dict[str, subprocess.Popen], sso, stack) -> None:  # type: ignore[no-untyped-def]
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    if sso is not None:
        sso.stop()
    if stack is not None:
        stack.stop()


def _dev_sso(env: dict[str, str]):  # type: ignore[no-untyped-def]
    """A local OpenID provider standing in for Google (unless real Google settings are given), so the SSO button
    of the demo works: it signs in the demo owner, whose email it vouches for."""
    if os.environ.get("GOOGLE_CLIENT_ID"):
        return None
    from devtools.oidc_provider import start

    secret = secrets.token_urlsafe(24)
    log = open(LOG_DIR / "oidc.log", "w", encoding="utf-8")  # noqa: SIM115 (open while the provider runs)
    provider = start({
        "style": "google",
        "clients": [{"client_id": "better-invoice-dev", "client_secret": secret, "application_type": "native",
                     "redirect_uris": ["http://127.0.0.1/sign-in/sso/google/callback"]}],
        "accounts": {"dana": {"sub": "dev-dana-demo", "email": DEMO_EMAIL, "email_verified": True,
                              "name": "Dana Demo"}},
    }, log=log)
    env.update({"GOOGLE_CLIENT_ID": "better-invoice-dev", "GOOGLE_CLIENT_SECRET": secret,
                "GOOGLE_METADATA_URL": provider.metadata_url})
    return provider


def _seed_demo(env: dict[str, str], sim_port: int) -> dict[str, str]:
    """Create the demo tenant once (kept in var/demo.json) and (re)connect it to this run's simulator."""
    path = VAR / "demo.json"
    demo = json.loads(path.read_text()) if path.exists() else {}
    if not demo.get("tenant_id"):
        demo["tenant_id"] = _flask(env, "tenants", "create", "Demo MSP", "--owner-email", DEMO_EMAIL,
                                   "--owner-name", "Dana Demo").splitlines()[-1]
        path.write_text(json.dumps(demo))
    connect = _connect_demo(env, demo["tenant_id"], sim_port).splitlines()
    checks = [line for line in connect if line.startswith("ok ")]
    if connect and len(checks) == len(connect):
        print(f"Demo tenant connected to the simulator ({len(checks)} checks ok)", flush=True)
    elif connect:
        print("\n".join(connect), flush=True)
    return demo


def _connect_demo(env: dict[str, str], tenant_id: str, sim_port: int) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "connectwise", "connect", tenant_id,
                             "--site", f"http://127.0.0.1:{sim_port}", "--company", "bettersim",
                             "--public-key", "simpublic", "--private-key", "simprivate"],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip()[-1500:]


if __name__ == "__main__":
    sys.exit(main())
