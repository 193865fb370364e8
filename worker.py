"""The RQ worker; the one serving every queue also runs the scheduler (periodic and delayed jobs).

`python worker.py` serves every queue, mail first; `python worker.py --queues mail` serves only the named ones (the
Procfile runs one for mail, so a sign-in code never waits for a long PDF already being rendered).
"""

from __future__ import annotations

import sys

from rq import Worker
from rq.serializers import JSONSerializer

from app import create_app
from app.config import ConfigError
from app.dbcheck import check_app_role
from app.jobs.queue import QUEUE_NAMES, queues_by_priority
from app.jobs.schedule import ensure_scheduled
from app.services import services_of


def queue_names(argv: list[str]) -> list[str]:
    """The queues named by ``--queues a,b`` (every queue when absent), in priority order."""
    if "--queues" not in argv:
        return list(QUEUE_NAMES)
    index = argv.index("--queues")
    named = argv[index + 1].split(",") if index + 1 < len(argv) else []
    unknown = [n for n in named if n not in QUEUE_NAMES]
    if not named or unknown:
        raise ValueError(f"--queues takes a comma-separated list of {', '.join(QUEUE_NAMES)}")
    return [n for n in QUEUE_NAMES if n in named]


def main(argv: list[str]) -> int:
    try:
        names = queue_names(argv)
    except ValueError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app()
        services = services_of(app)
        check_app_role(services.engine)
    except ConfigError as exc:
        print(f"worker: refusing to start: {exc}", file=sys.stderr)
        return 2
    burst = "--burst" in argv
    # Only the worker that serves every queue schedules: the periodic jobs once, and delayed jobs for all queues.
    schedules = names == list(QUEUE_NAMES)
    with app.app_context():
        connection = services.redis
        if schedules:
            ensure_scheduled(connection)
        queues = queues_by_priority(connection, names)
        worker = Worker(queues, connection=connection, serializer=JSONSerializer)
        worker.work(with_scheduler=schedules, burst=burst, logging_level=services.config.LOG_LEVEL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
