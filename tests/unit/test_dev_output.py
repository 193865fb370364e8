"""`make dev` output: children's logs go to var/log/, outbox mail to the terminal only, and Ctrl-C under make
stops us cleanly with status 0 instead of a make error."""

from __future__ import annotations

import io
import os
import select
import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devtools.dev import ROOT, route_output

WORKER_OUTPUT = """\
2026-12-01 09:52:30,099 INFO [None None] rq.worker: Worker 0f9a: started with PID 22672, version 3.0.0

[outbox] to owner@demo-msp.example: Your Better Invoice sign-in code
Your Better Invoice sign-in code is:

    011593

It works once, in the browser that asked for it, for the next 10 minutes.

2026-12-01 09:59:01,120 INFO [None None] rq.worker: default: Job OK (4c1e)
127.0.0.1 - - [01/Dec/2026 09:52:24] "GET /login/companyinfo/bettersim HTTP/1.1" 200 -
"""


def test_child_output_goes_to_its_log_and_only_outbox_mail_reaches_the_terminal():
    log, terminal = io.StringIO(), io.StringIO()
    route_output(io.StringIO(WORKER_OUTPUT), log, terminal)
    assert "[outbox] to owner@demo-msp.example" in terminal.getvalue()
    assert "011593" in terminal.getvalue()
    assert "rq.worker" not in terminal.getvalue() and "GET /login" not in terminal.getvalue()
    assert "011593" not in log.getvalue(), "sign-in codes are never written to a log file"
    assert "[outbox]" not in log.getvalue()
    assert "Job OK" in log.getvalue() and "GET /login/companyinfo" in log.getvalue()


def test_an_unterminated_outbox_block_stops_reaching_the_terminal_after_a_bounded_number_of_lines():
    log, terminal = io.StringIO(), io.StringIO()
    route_output(io.StringIO("[outbox] to a@b.example: hi\n" + "noise\n" * 500), log, terminal)
    assert terminal.getvalue().count("noise") < 100
    assert log.getvalue().count("noise") > 400


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_ctrl_c_under_make_ends_with_status_0_and_no_make_error(tmp_path: Path):
    import pty

    script = tmp_path / "fake_dev.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from devtools.dev import _own_terminal, _stop_on_signal
        signal.signal(signal.SIGINT, _stop_on_signal)
        with _own_terminal():
            try:
                print("READY", flush=True)
                time.sleep(30)
            except KeyboardInterrupt:
                print("stopped", flush=True)
    """))
    (tmp_path / "Makefile").write_text(f"dev:\n\t@{sys.executable} {script}\n")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.chdir(tmp_path)
        os.execvp("make", ["make", "dev"])  # noqa: S606 (make is what the person runs)
    output, interrupted, deadline = b"", False, time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            if not interrupted and b"READY" in output:
                os.write(fd, b"\x03")  # what Ctrl-C on the terminal does: SIGINT to the foreground group
                interrupted = True
        status = _wait_bounded(pid, 10)
    finally:
        os.close(fd)
    text = output.decode(errors="replace")
    assert interrupted, text
    assert "stopped" in text and "Interrupt" not in text, text
    assert os.waitstatus_to_exitcode(status) == 0, text


def _wait_bounded(pid: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]
