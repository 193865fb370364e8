"""Jobs go to queues by workload: sign-in mail never waits behind PDFs or ConnectWise pulls."""

from __future__ import annotations

import ast
import secrets
import uuid
from pathlib import Path

import pytest
from rq import SimpleWorker

from app.invoices import pdf_jobs
from app.jobs.queue import QUEUE_NAMES, enqueue, get_queue, queues_by_priority
from tests.conftest import csrf_of
from tests.integration.signin_helpers import latest_code

APP_DIR = Path(__file__).resolve().parents[2] / "app"
ROOT = APP_DIR.parent
WORKLOAD_QUEUES = {"mail", "pdf", "connectwise", "maintenance"}


def _enqueue_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in APP_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "enqueue":
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return calls


def test_mail_is_the_first_queue_a_worker_takes_from():
    assert QUEUE_NAMES[0] == "mail"
    assert WORKLOAD_QUEUES <= set(QUEUE_NAMES)


def test_every_enqueue_names_a_workload_queue():
    calls = [(where, call) for where, call in _enqueue_calls() if not where.startswith("app/jobs/queue.py")]
    assert calls, "no enqueue calls found"
    for where, call in calls:
        named = {kw.arg: kw.value for kw in call.keywords}
        assert "queue" in named, f"{where}: enqueue without queue="
        value = named["queue"]
        if isinstance(value, ast.Constant):
            assert value.value in WORKLOAD_QUEUES, f"{where}: queue {value.value!r}"


def test_enqueue_without_a_queue_is_refused(redis_conn):
    with pytest.raises(TypeError):
        enqueue(redis_conn, pdf_jobs.pdf_job, str(uuid.uuid4()), 3, "Letter", "k" * 24)  # type: ignore[call-arg]


def test_pdfs_go_to_the_pdf_queue_not_the_mail_queue():
    assert pdf_jobs.QUEUE == "pdf"


def test_a_sign_in_code_job_is_on_the_mail_queue(app, client, make_tenant, redis_conn):
    t = make_tenant()
    response = client.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(client)})
    assert response.status_code == 302
    [job] = get_queue(redis_conn, "mail").get_jobs()
    assert job.func_name == "app.auth.codes.send_code_job"
    assert all(get_queue(redis_conn, name).count == 0 for name in QUEUE_NAMES if name != "mail")


def test_a_sign_in_code_is_taken_before_50_queued_pdf_jobs(app, client, make_tenant, redis_conn):
    t = make_tenant()
    for _ in range(50):
        enqueue(redis_conn, pdf_jobs.pdf_job, str(t.id), 3, "Letter", secrets.token_urlsafe(18), queue=pdf_jobs.QUEUE)
    client.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(client)})
    queues = queues_by_priority(redis_conn)
    with app.app_context():
        SimpleWorker(queues, connection=redis_conn, serializer=queues[0].serializer).work(burst=True, max_jobs=1)
    assert latest_code(app, t.owner_email), "the one job the worker took was not the sign-in code"
    assert get_queue(redis_conn, pdf_jobs.QUEUE).count == 50


def test_a_worker_can_serve_only_the_mail_queue(redis_conn):
    import worker

    assert [q.name for q in queues_by_priority(redis_conn, worker.queue_names(["--queues", "mail"]))] == ["mail"]
    assert worker.queue_names([]) == list(QUEUE_NAMES)
    with pytest.raises(ValueError):
        worker.queue_names(["--queues", "mail,nonsense"])


def test_the_procfile_runs_a_worker_of_its_own_for_mail():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line)
    assert any("worker.py" in cmd and "--queues mail" in cmd and "," not in cmd.split("--queues", 1)[1]
               for cmd in lines.values())
    assert any(cmd.strip() == "python worker.py" for cmd in lines.values())  # everything, mail first
