"""`make dev`: private PostgreSQL + Redis under var/, migrate, seed a demo tenant connected to the ConnectWise
simulator, run web + worker + simulator, print the URL and a sign-in link; Ctrl-C stops all of it."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DEMO_EMAIL = "owner@demo-msp.example"


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


def _wait_http(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f}s")


def main() -> int:
    from devtools.services import start_stack

    VAR.mkdir(exist_ok=True)
    print("Starting PostgreSQL and Redis under var/ ...", flush=True)
    stack = start_stack(VAR, persist=True)
    children: list[subprocess.Popen] = []
    sso = None
    try:
        web_port, sim_port = _port(int(os.environ.get("PORT", "5000"))), _port(8765)
        env = {**os.environ, **stack.env, **_secrets(), "APP_ENV": "development", "LOG_FORMAT": "text",
               "BASE_URL": f"http://127.0.0.1:{web_port}",
               "CONNECTWISE_CLIENT_ID": os.environ.get("CONNECTWISE_CLIENT_ID", "00000000-0000-4000-8000-00000000dev0")}
        sso = _dev_sso(env)
        print("Migrating ...", flush=True)
        _flask(env, "db", "upgrade")

        sim = subprocess.Popen([sys.executable, "-m", "cwsim", "--port", str(sim_port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True)
        children.append(sim)
        _wait_http(f"http://127.0.0.1:{sim_port}/login/companyinfo/bettersim")
        demo = _seed_demo(env, sim_port)

        children.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "run", "--host",
                                          "127.0.0.1", "--port", str(web_port), "--no-reload"], cwd=ROOT, env=env))
        children.append(subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env))
        _wait_http(f"http://127.0.0.1:{web_port}/healthz")
        link = _flask(env, "dev", "sign-in-link", demo["tenant_id"], DEMO_EMAIL)
        print("\n" + "=" * 72)
        print(f"  Better Invoice is running at http://127.0.0.1:{web_port}")
        print(f"  Demo tenant: Demo MSP ({demo['tenant_id']}), owner {DEMO_EMAIL}")
        print(f"  Sign in (development link, valid 12 h):\n    {link}")
        print(f"  ConnectWise simulator: http://127.0.0.1:{sim_port}")
        if sso is not None:
            print(f"  'Continue with Google' signs in as {DEMO_EMAIL} through a local OpenID provider ({sso.url})")
        print("  Ctrl-C stops web, worker, simulator, PostgreSQL and Redis.")
        print("=" * 72 + "\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A process exited; stopping everything.", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if sso is not None:
            sso.stop()
        stack.stop()


def _dev_sso(env: dict[str, str]):  # type: ignore[no-untyped-def]
    """A local OpenID provider standing in for Google (unless real Google settings are given), so the SSO button
    of the demo works: it signs in the demo owner, whose email it vouches for."""
    if os.environ.get("GOOGLE_CLIENT_ID"):
        return None
    from devtools.oidc_provider import start

    secret = secrets.token_urlsafe(24)
    provider = start({
        "style": "google",
        "clients": [{"client_id": "better-invoice-dev", "client_secret": secret, "application_type": "native",
                     "redirect_uris": ["http://127.0.0.1/sign-in/sso/google/callback"]}],
        "accounts": {"dana": {"sub": "dev-dana-demo", "email": DEMO_EMAIL, "email_verified": True,
                              "name": "Dana Demo"}},
    })
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
    connect = _connect_demo(env, demo["tenant_id"], sim_port)
    if connect:
        print(connect, flush=True)
    return demo


def _connect_demo(env: dict[str, str], tenant_id: str, sim_port: int) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "connectwise", "connect", tenant_id,
                             "--site", f"http://127.0.0.1:{sim_port}", "--company", "bettersim",
                             "--public-key", "simpublic", "--private-key", "simprivate"],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip()[-1500:]


if __name__ == "__main__":
    sys.exit(main())
