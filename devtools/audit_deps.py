"""`make test`'s dependency audit: pip-audit over the locked set, when its vulnerability database answers.

This machine's network reaches the package index but not always PyPI's JSON API (pip-audit's database); then the
audit is skipped with a printed note instead of failing the build on a network it cannot reach.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-dev.lock"


def probe_url() -> str:
    """PyPI's per-release JSON for the Flask we lock: what pip-audit asks (a mirror may serve project pages only)."""
    for line in LOCK.read_text().splitlines():
        if line.lower().startswith("flask=="):
            return f"https://pypi.org/pypi/flask/{line.split('==', 1)[1].split()[0]}/json"
    return "https://pypi.org/pypi/flask/json"


def database_answers(timeout: float = 5.0) -> tuple[bool, str]:
    try:
        response = httpx.get(probe_url(), timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    return response.status_code == 200, f"HTTP {response.status_code}"


def main() -> int:
    ok, why = database_answers()
    if not ok:
        print(f"pip-audit skipped: its vulnerability database ({probe_url()}) did not answer ({why})")
        return 0
    audit = Path(sys.executable).with_name("pip-audit")
    result = subprocess.run([str(audit), "--requirement", str(LOCK), "--require-hashes", "--disable-pip",
                             "--progress-spinner", "off"], cwd=ROOT)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
