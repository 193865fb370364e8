"""Start and stop the local OpenID provider (`devtools/oidc/server.mjs`, the npm `oidc-provider` under node).

``start(config)`` runs one provider process on a free loopback port and returns an ``OidcProvider`` handle
(``.url``, ``.issuer``, ``.metadata_url``, ``.stop()``); ``ensure_node_modules()`` runs ``npm ci`` when the
installed packages are missing or older than the lockfile. The config is the JSON documented at the top of
server.mjs (style "google" or "microsoft", clients, accounts, discovery variants) and is passed on stdin.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
SERVER = OIDC_DIR / "server.mjs"
# Same stamp as the Makefile's, so `make test` and a bare pytest agree on whether npm ci is needed.
STAMP = OIDC_DIR / "node_modules" / ".installed"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0
NPM_CI_TIMEOUT_SECONDS = 300.0


class OidcProviderError(RuntimeError):
    """The provider could not be installed or started; the message carries the tail of its stderr."""


def _needs_install() -> bool:
    if not STAMP.exists():
        return True
    installed = STAMP.stat().st_mtime
    return any(p.stat().st_mtime > installed for p in (OIDC_DIR / "package.json", OIDC_DIR / "package-lock.json"))


def ensure_node_modules() -> None:
    """`npm ci --no-audit --no-fund` in devtools/oidc when node_modules is missing or older than the lockfile."""
    if not _needs_install():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise OidcProviderError("npm is not installed: the local OpenID provider needs node 20+ and npm")
    # Two test processes may start at once; one installs, the other waits and then sees the fresh stamp.
    lock_path = Path(tempfile.gettempdir()) / f"bi-oidc-npm-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _needs_install():
                return
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, capture_output=True,
                                    text=True, timeout=NPM_CI_TIMEOUT_SECONDS, check=False)
            if result.returncode != 0:
                raise OidcProviderError(f"npm ci failed in {OIDC_DIR}:\n{result.stderr[-2000:]}")
            STAMP.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class OidcProvider:
    """A running provider. For the Microsoft style ``issuer`` is the template ``<url>/{tenantid}/v2.0``."""

    process: subprocess.Popen
    url: str
    issuer: str
    metadata_url: str
    style: str
    tenants: list[str]
    _stderr: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200), repr=False)

    def tenant_issuer(self, tenant_id: str) -> str:
        """The concrete issuer of one Microsoft-style tenant."""
        return self.issuer.replace("{tenantid}", tenant_id)

    def variant_metadata_url(self, name: str) -> str:
        """Discovery document of a `discovery_variants` entry (another issuer, or foreign keys)."""
        suffix = "/.well-known/openid-configuration"
        return f"{self.url}/variants/{name}{suffix}"

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def __enter__(self) -> OidcProvider:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _pump(stream: Any, sink: queue.Queue | None, tail: collections.deque, log: TextIO | None = None) -> None:
    """Drain a pipe so the child never blocks on it; the first lines go to ``sink``, all to ``tail`` (and ``log``)."""
    for line in stream:
        line = line.rstrip("\n")
        tail.append(line)
        if log is not None:
            log.write(line + "\n")
            log.flush()
        if sink is not None:
            sink.put(line)
    if sink is not None:
        sink.put(None)


def start(config: dict[str, Any], *, port: int = 0, timeout: float = START_TIMEOUT_SECONDS,
          log: TextIO | None = None) -> OidcProvider:
    """Start ``node server.mjs`` with ``config`` and wait (at most ``timeout`` s) for its ready line; ``log``
    receives everything it prints (`make dev` keeps it in var/log/)."""
    ensure_node_modules()
    node = shutil.which("node")
    if node is None:
        raise OidcProviderError("node is not installed: the local OpenID provider needs node 20+")
    process = subprocess.Popen([node, str(SERVER), "--port", str(port), "--config", "-"], cwd=OIDC_DIR,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout_lines: queue.Queue = queue.Queue()
    stdout_tail: collections.deque = collections.deque(maxlen=50)
    stderr_tail: collections.deque = collections.deque(maxlen=200)
    threading.Thread(target=_pump, args=(process.stdout, stdout_lines, stdout_tail, log), daemon=True).start()
    threading.Thread(target=_pump, args=(process.stderr, None, stderr_tail, log), daemon=True).start()
    try:
        assert process.stdin is not None
        process.stdin.write(json.dumps(config))
        process.stdin.close()
        ready = _wait_ready(stdout_lines, timeout)
    except BaseException as exc:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        time.sleep(0.05)  # let the pump threads take the last stderr lines
        if isinstance(exc, OidcProviderError):
            raise OidcProviderError(f"{exc}\n{chr(10).join(stderr_tail)}") from None
        raise
    return OidcProvider(process=process, url=ready["url"], issuer=ready["issuer"], metadata_url=ready["metadata_url"],
                        style=ready["style"], tenants=list(ready.get("tenants", [])), _stderr=stderr_tail)


def _wait_ready(lines: queue.Queue, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OidcProviderError(f"the OpenID provider did not report ready within {timeout:.0f}s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise OidcProviderError("the OpenID provider exited before it was ready")
        if line.startswith("{"):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == "ready":
                return message
