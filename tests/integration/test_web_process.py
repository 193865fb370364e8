"""The real `web:` command of the Procfile: what gunicorn prints must hold no public-link token or sign-in code."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_KEYS

ROOT = Path(__file__).resolve().parents[2]


def _procfile_command(kind: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == kind:
            return command.strip()
    raise AssertionError(f"no {kind}: line in the Procfile")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_procfile_web_command_prints_no_token_code_or_state(migrated):
    port = _free_port()
    env = {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "PORT": str(port), "WEB_BIND_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
        "APP_ENV": "test", "DATABASE_URL": migrated.app_url, "REDIS_URL": migrated.redis_url,
        "SECRET_KEY": "procfile-test-secret-" + "s" * 32, "ENCRYPTION_KEYS": TEST_KEYS,
        "CONNECTWISE_CLIENT_ID": "6f1b5c9e-0000-4000-8000-000000000001", "LOG_FORMAT": "text",
    }
    token = secrets.token_urlsafe(32)
    code, state = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    web = subprocess.Popen(["bash", "-c", "exec " + _procfile_command("web")], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if web.poll() is not None or time.monotonic() > deadline:
                os.killpg(web.pid, signal.SIGTERM) if web.poll() is None else None
                print(web.communicate(timeout=30)[0].decode()[-3000:])
                raise AssertionError("gunicorn did not start (its output is printed above)")
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/i/{token}?ref=mail", timeout=10).status_code in (404, 410)
        httpx.get(f"http://127.0.0.1:{port}/sign-in/sso/google/callback?code={code}&state={state}", timeout=10)
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
        printed = web.communicate(timeout=30)[0].decode(errors="replace")
    # It did print: the app's own request log, with the route pattern in place of the token.
    assert "/i/<token>" in printed and "/sign-in/sso/google/callback" in printed, printed[-2000:]
    assert token not in printed
    assert code not in printed and state not in printed
