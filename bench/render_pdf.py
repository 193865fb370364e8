"""PDF rendering time: invoices of 10, 100 and 500 lines through xhtml2pdf (the app's renderer), median of a few
runs after a warm-up; goal <= 1.5 s at 100 lines. Then, where WeasyPrint can be pip-installed into a venv of its
own under var/ (never a dependency of the app), the same HTML through WeasyPrint, printed as a ratio.

Run alone with `.venv/bin/python -m bench.render_pdf`, or as the PDF part of `make bench-render`.
Documents are synthetic (app.invoices.samples): the time is rendering, not ConnectWise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEASY_VENV = ROOT / "var" / "bench-weasyprint"
WEASYPRINT = "weasyprint==70.0"
GOAL_SECONDS_AT_100 = 1.5

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


def measure_xhtml2pdf(lines: int, runs: int, page_size: str) -> tuple[float, int]:
    """Median seconds of ``runs`` renders (after one warm-up), and the page count."""
    from pypdf import PdfReader

    from app.branding.model import default_branding
    from app.invoices.pdf import render_pdf
    from app.invoices.samples import sample_document

    doc = sample_document(lines, "USD")
    branding = default_branding()
    data = render_pdf(doc, branding, logo=None, page_size=page_size)  # type: ignore[arg-type]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        render_pdf(doc, branding, logo=None, page_size=page_size)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    import io

    return statistics.median(times), len(PdfReader(io.BytesIO(data)).pages)


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
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(f"PDF rendering (xhtml2pdf, {args.page_size}, median of {args.runs} runs after a warm-up):")
    ours = {}
    for lines in sizes:
        seconds, pages = measure_xhtml2pdf(lines, args.runs, args.page_size)
        ours[lines] = seconds
        print(f"  {lines:>4} lines: {seconds:6.3f} s   ({pages} pages)")
    if 100 in ours:
        verdict = "PASS" if ours[100] <= GOAL_SECONDS_AT_100 else "FAIL"
        print(f"  goal <= {GOAL_SECONDS_AT_100} s at 100 lines: {verdict}")
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
