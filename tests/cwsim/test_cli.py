"""``python -m cwsim`` prints its URL, company id and keys, then serves until killed."""

from __future__ import annotations

import subprocess
import sys

import httpx


def test_cli_prints_url_and_keys_then_serves():
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "cwsim",
            "--port",
            "0",
            "--invoices",
            "5",
            "--company",
            "acme",
            "--public-key",
            "pub",
            "--private-key",
            "priv",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        url = lines[0].split()[3]
        assert url.startswith("http://127.0.0.1:")
        assert lines[1:] == ["company id: acme", "public key: pub", "private key: priv"]
        response = httpx.get(
            f"{url}/v4_6_release/apis/3.0/finance/invoices/count",
            auth=("acme+pub", "priv"),
            headers={"clientId": "x"},
        )
        assert response.json() == {"count": 5}
    finally:
        proc.terminate()
        proc.wait(timeout=5)
