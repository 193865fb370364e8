"""The PDF renderer's resource policy: only data: URIs and the shipped fonts, so markup that slipped past escaping
can never make a render fetch a URL or read a file."""

from __future__ import annotations

import base64
import io
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from app.invoices import pdf
from app.invoices.templating import FONT_DIR

ROOT = Path(__file__).resolve().parents[2]
_opened: list[str] = []
_recording = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _recording.is_set() and isinstance(args[0], (str, bytes)):
        _opened.append(args[0].decode() if isinstance(args[0], bytes) else args[0])


sys.addaudithook(_audit)  # hooks cannot be removed; it records only while a test holds _recording


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    """Every path the process opens inside the block."""
    _opened.clear()
    _recording.set()
    try:
        yield _opened
    finally:
        _recording.clear()


@pytest.fixture()
def listener():  # type: ignore[no-untyped-def]
    """A loopback TCP listener that records every connection it accepts."""
    hits: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    hits.append(conn.recv(1024))
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\n\r\n" + _png())
                except OSError:
                    hits.append(b"?")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join(timeout=5)
    server.close()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _hostile_html(port: int, secret: Path) -> str:
    font = FONT_DIR / "DejaVuSans.ttf"
    escape = FONT_DIR / ".." / ".." / "config.py"
    return f"""<html><head><style>
@import url(http://127.0.0.1:{port}/imported.css);
@font-face {{ font-family: "Good"; src: url("{font}"); }}
@font-face {{ font-family: "Passwd"; src: url(/etc/passwd); }}
@font-face {{ font-family: "Escape"; src: url("{escape}"); }}
@font-face {{ font-family: "Remote"; src: url(http://127.0.0.1:{port}/font.ttf); }}
body {{ font-family: "Good"; }}
p.bg {{ background-image: url(http://127.0.0.1:{port}/bg.png); }}
</style>
<link rel="stylesheet" href="file:///etc/passwd">
<link rel="stylesheet" href="http://127.0.0.1:{port}/style.css">
</head><body>
<p>Résumé of the invoice</p>
<p class="bg">background</p>
<img src="http://127.0.0.1:{port}/x">
<img src="https://127.0.0.1:{port}/y">
<img src="{secret.name}">
<img src="file://{secret}">
<img src="{secret}">
<img src="../{secret.parent.name}/{secret.name}">
<img src="{FONT_DIR}/../../config.py">
<img src="data:image/png;base64,{base64.b64encode(_png()).decode()}">
</body></html>"""


def test_hostile_markup_fetches_nothing_and_reads_no_file_outside_the_fonts_but_still_renders(
        tmp_path, monkeypatch, listener):
    port, hits = listener
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png())
    monkeypatch.chdir(tmp_path)  # relative paths would otherwise resolve (and be allowed) here

    html = _hostile_html(port, secret)
    with recording_opens() as opened:
        data = pdf.html_to_pdf(html)

    assert hits == [], "a render reached the network"
    reads = {str(Path(p).resolve()) for p in opened}
    assert "/etc/passwd" not in reads
    assert str(secret) not in reads
    inside_project = [p for p in reads if Path(p).is_relative_to(ROOT) and "/.venv/" not in p]
    assert all(Path(p).is_relative_to(FONT_DIR.resolve()) for p in inside_project), inside_project
    assert not [p for p in reads if Path(p).is_relative_to(tmp_path)]
    assert data.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "Résumé of the invoice" in text


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:1/x", "https://example.com/logo.png", "ftp://example.com/f", "//example.com/x",
    "file:///etc/passwd", "/etc/passwd", "file://example.com/etc/passwd", "secret.png", "../fonts/DejaVuSans.ttf",
    str(FONT_DIR / ".." / ".." / "config.py"), str(FONT_DIR / "missing.ttf"), str(FONT_DIR),
    "javascript:alert(1)",
])
def test_the_link_callback_refuses_anything_but_data_and_shipped_fonts(uri):
    assert pdf.link_callback(uri, None) == pdf.REFUSED


def test_the_link_callback_passes_data_uris_and_shipped_font_files():
    font = FONT_DIR / "DejaVuSans.ttf"
    assert pdf.link_callback(str(font), None) == str(font.resolve())
    assert pdf.link_callback(f"file://{font}", None) == str(font.resolve())
    assert pdf.link_callback(str(FONT_DIR / ".." / "fonts" / "NotoSans-Regular.ttf"), None) == str(
        (FONT_DIR / "NotoSans-Regular.ttf").resolve())
    uri = "data:image/png;base64,AAAA"
    assert pdf.link_callback(uri, None) == uri


def test_the_policy_refuses_public_hosts_without_resolving_them_and_files_outside_the_fonts():
    from xhtml2pdf.config.resources import ResourceAccessError

    with pytest.raises(ResourceAccessError):
        pdf.RESOURCE_POLICY.check_url("https://cdn.example.com/font.ttf")
    with pytest.raises(ResourceAccessError):
        pdf.RESOURCE_POLICY.check_path(ROOT / "app" / "config.py")
    pdf.RESOURCE_POLICY.check_path(FONT_DIR / "DejaVuSans.ttf")
