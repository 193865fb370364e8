"""PDF rendering time: invoices of 10, 100 and 500 lines through xhtml2pdf (the app's renderer), median of a few
runs after a warm-up; goals <= 0.8 s at 100 lines and <= 3 s at 500 (issue 14; 1.25 s and 5.6 s before).
"Before" is the same document laid out the way it was before issue 14 (the page count in a footer frame, which
makes xhtml2pdf lay the document out twice), measured in the same run so a busy machine slows both alike; CPU
seconds are printed beside wall seconds for the same reason. Then, where WeasyPrint can be pip-installed into a
venv of its own under var/ (never a dependency of the app), the same HTML through WeasyPrint, printed as a ratio.

Run alone with `.venv/bin/python -m bench.render_pdf`, or as the PDF part of `make bench-render`.
Documents are synthetic (app.invoices.samples): the time is rendering, not ConnectWise.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
WEASY_VENV = ROOT / "var" / "bench-weasyprint"
WEASYPRINT = "weasyprint==70.0"
GOALS = {100: 0.8, 500: 3.0}  # seconds
# What pdf.html had before issue 14: a footer frame whose page count forces xhtml2pdf's second layout pass.
LEGACY_FRAME = ("@frame footer { -pdf-frame-content: bi-page-footer; bottom: 0.8cm; margin-left: 1.5cm; "
                "margin-right: 1.5cm; height: 0.7cm; }\n}")
LEGACY_FOOTER = ('<body>\n<div id="bi-page-footer" style="font-size: 7.5pt; color: #666; text-align: right">'
                 "Invoice · Page <pdf:pagenumber /> of <pdf:pagecount /></div>")

# Runs inside WeasyPrint's venv: render each HTML file ``runs`` times after one warm-up, print seconds as JSON.
WEASY_SCRIPT = """
import json, sys, time
from weasyprint import HTML
out = {}
for path in sys.argv[2:]:
    html = open(path, encoding="utf-8").read()
    HTML(string=html, base_url="/").write_pdf()
    times = []
    for _ in range(int(sys.argv[1])):
        t0 = time.perf_counter()
        HTML(string=html, base_url="/").write_pdf()
        times.append(time.perf_counter() - t0)
    out[path] = times
print(json.dumps(out))
"""


# A NamedTuple, not a dataclass: bench/render.py loads this file without registering it in sys.modules.
class Timing(NamedTuple):
    wall: float  # median seconds
    cpu: float
    pages: int


def _median_runs(render: Callable[[], bytes], runs: int) -> Timing:
    """Median wall and CPU seconds of ``runs`` calls after one warm-up, and the page count."""
    from pypdf import PdfReader

    data = render()
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        render()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return Timing(statistics.median(walls), statistics.median(cpus), len(PdfReader(io.BytesIO(data)).pages))


def measure_xhtml2pdf(lines: int, runs: int, page_size: str) -> Timing:
    """The app's render_pdf as it is: one layout pass, then the footers drawn on."""
    from app.branding.model import default_branding
    from app.invoices.pdf import render_pdf
    from app.invoices.samples import sample_document

    doc = sample_document(lines, "USD")
    branding = default_branding()
    return _median_runs(lambda: render_pdf(doc, branding, logo=None, page_size=page_size), runs)


def measure_before(lines: int, runs: int, page_size: str) -> Timing:
    """The same HTML with the footer frame and page count it had before issue 14 (two layout passes)."""
    from app.branding.model import default_branding
    from app.invoices import pdf
    from app.invoices.samples import sample_document

    html = pdf.html_for(sample_document(lines, "USD"), default_branding(), logo=None, page_size=page_size)
    html = html.replace("\n}", "\n" + LEGACY_FRAME, 1).replace("<body>", LEGACY_FOOTER, 1)
    return _median_runs(lambda: pdf.html_to_pdf(html), runs)


def same_html(lines: int, page_size: str) -> str:
    """The HTML xhtml2pdf is given, made standard for WeasyPrint: its page-number tags become CSS counters."""
    from app.branding.model import default_branding
    from app.invoices import pdf
    from app.invoices.samples import sample_document

    html = pdf.html_for(sample_document(lines, "USD"), default_branding(), logo=None, page_size=page_size)
    html = html.replace("<pdf:pagenumber />", "").replace("<pdf:pagecount />", "").replace("<pdf:nextpage />", "")
    counters = ("@page { @bottom-right { content: 'Page ' counter(page) ' of ' counter(pages); "
                "font-size: 7.5pt; color: #666; } }\n#bi-page-footer { display: none; }\n"
                ".bi-detail { page-break-before: always; }\n</style>")
    return html.replace("</style>", counters, 1)


def weasyprint_python() -> Path | None:
    """WeasyPrint's own venv under var/, created on first use; None when it cannot be installed here."""
    python = WEASY_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"  installing {WEASYPRINT} into {WEASY_VENV.relative_to(ROOT)} (once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(WEASY_VENV)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", WEASYPRINT],
                       check=True, capture_output=True, timeout=600)
        subprocess.run([str(python), "-c", "import weasyprint"], check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"  WeasyPrint could not be installed here ({type(exc).__name__}: "
              f"{detail.decode(errors='replace').strip().splitlines()[-1:] or ''}); ratio skipped")
        return None
    return python


def measure_weasyprint(python: Path, sizes: list[int], runs: int, page_size: str) -> dict[int, float] | None:
    with tempfile.TemporaryDirectory(prefix="bi-bench-weasy-") as tmp:
        paths = {}
        for lines in sizes:
            path = Path(tmp) / f"invoice-{lines}.html"
            path.write_text(same_html(lines, page_size), "utf-8")
            paths[lines] = str(path)
        try:
            done = subprocess.run([str(python), "-c", WEASY_SCRIPT, str(runs), *paths.values()], check=True,
                                  capture_output=True, timeout=1800, text=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            print(f"  WeasyPrint failed ({type(exc).__name__}); ratio skipped")
            return None
        times = json.loads(done.stdout.strip().splitlines()[-1])
        return {lines: statistics.median(times[path]) for lines, path in paths.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,100,500", help="line counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per size (the median is printed)")
    parser.add_argument("--page-size", default="A4", choices=("A4", "Letter"))
    parser.add_argument("--skip-weasyprint", action="store_true")
    parser.add_argument("--skip-before", action="store_true", help="do not measure the two-pass layout")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(f"PDF rendering (xhtml2pdf, {args.page_size}, median of {args.runs} runs after a warm-up):")
    ours = {}
    for lines in sizes:
        now = measure_xhtml2pdf(lines, args.runs, args.page_size)
        ours[lines] = now.wall
        line = f"  {lines:>4} lines: {now.wall:6.3f} s (cpu {now.cpu:6.3f} s, {now.pages} pages)"
        if not args.skip_before:
            before = measure_before(lines, args.runs, args.page_size)
            line += (f"   before: {before.wall:6.3f} s (cpu {before.cpu:6.3f} s, {before.pages} pages)"
                     f"   after/before = {now.wall / before.wall:.2f} (cpu {now.cpu / before.cpu:.2f})")
        print(line, flush=True)
    for lines, goal in GOALS.items():
        if lines in ours:
            verdict = "PASS" if ours[lines] <= goal else "FAIL (on this machine, now)"
            print(f"  goal <= {goal} s at {lines} lines: {verdict}")
    if args.skip_weasyprint:
        return
    print("WeasyPrint on the same HTML (reference only, its own venv):")
    python = weasyprint_python()
    if python is None:
        return
    theirs = measure_weasyprint(python, sizes, args.runs, args.page_size)
    if theirs is None:
        return
    for lines in sizes:
        print(f"  {lines:>4} lines: {theirs[lines]:6.3f} s   xhtml2pdf / WeasyPrint = {ours[lines] / theirs[lines]:.2f}")


if __name__ == "__main__":
    main()
