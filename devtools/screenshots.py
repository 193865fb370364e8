"""Regenerate the README's screenshots: the invoices page and a public invoice, 1366 px wide, in docs/screenshots/.

``python -m devtools.screenshots`` (or ``make screenshots``) starts what ``make dev`` starts, but throwaway: private
PostgreSQL and Redis in a temporary folder, the ConnectWise simulator, the web app; a demo workspace connected to the
simulator; then Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) signs in with a development link,
takes the invoices page, makes a public link and takes the page a client sees. Each PNG is reduced to a palette so
it stays small (goal: at most 200 KB). Everything it started is stopped at the end; ``var/`` is not touched.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1366, 860
MAX_BYTES = 200_000
EMAIL = "owner@demo-msp.example"
PUBLIC_INVOICE = 3  # one with products and time, on one screen


def _flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"flask {' '.join(args[:2])} failed:\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def _wait(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f}s")


def _small_png(raw: bytes, path: Path) -> int:
    """Save a screenshot as a palette PNG (a UI has few colours); returns its size in bytes."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB")
    for colours in (256, 128, 64):
        buffer = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def _shoot(base: str, sign_in: str, public_url: str) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            page.goto(sign_in)
            page.goto(base + "/invoices/")
            page.wait_for_selector("table.invoices-table")
            size = _small_png(page.screenshot(), OUT / "invoices.png")
            print(f"docs/screenshots/invoices.png: {size:,} bytes")
            client = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            client.goto(public_url)
            client.wait_for_selector(".bi-invoice")
            size = _small_png(client.screenshot(), OUT / "public-invoice.png")
            print(f"docs/screenshots/public-invoice.png: {size:,} bytes")
        finally:
            browser.close()


def main() -> int:
    from devtools.services import free_port, start_stack

    children: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bi-shots-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            web_port, sim_port = free_port(), free_port()
            key = base64.b64encode(os.urandom(32)).decode()
            env = {**os.environ, **stack.env, "APP_ENV": "development", "LOG_FORMAT": "text",
                   "SECRET_KEY": secrets.token_urlsafe(48), "ENCRYPTION_KEYS": f"shots:{key}",
                   "BASE_URL": f"http://127.0.0.1:{web_port}",
                   "CONNECTWISE_CLIENT_ID": "00000000-0000-4000-8000-00000000dev0"}
            _flask(env, "db", "upgrade")
            log = open(Path(tmp) / "processes.log", "w", encoding="utf-8")  # noqa: SIM115 (open while they run)
            children.append(subprocess.Popen([sys.executable, "-m", "cwsim", "--port", str(sim_port)], cwd=ROOT,
                                             env=env, stdout=log, stderr=subprocess.STDOUT))
            _wait(f"http://127.0.0.1:{sim_port}/login/companyinfo/bettersim")
            tenant = _flask(env, "tenants", "create", "Demo MSP", "--owner-email", EMAIL,
                            "--owner-name", "Dana Demo").splitlines()[-1]
            _flask(env, "connectwise", "connect", tenant, "--site", f"http://127.0.0.1:{sim_port}",
                   "--company", "bettersim", "--public-key", "simpublic", "--private-key", "simprivate")
            children.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "run", "--host",
                                              "127.0.0.1", "--port", str(web_port), "--no-reload"], cwd=ROOT,
                                             env=env, stdout=log, stderr=subprocess.STDOUT))
            base = f"http://127.0.0.1:{web_port}"
            _wait(base + "/healthz")
            sign_in = _flask(env, "dev", "sign-in-link", tenant, EMAIL)
            public_url = _flask(env, "invoices", "link", tenant, str(PUBLIC_INVOICE)).splitlines()[-1]
            _shoot(base, sign_in, public_url)
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
