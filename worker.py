"""The RQ worker, with the scheduler (for periodic and delayed jobs). `python worker.py`."""

from __future__ import annotations

import sys

from rq import Worker
from rq.serializers import JSONSerializer

from app import create_app
from app.config import ConfigError
from app.dbcheck import check_app_role
from app.jobs.queue import QUEUE_NAMES, get_queue
from app.jobs.schedule import ensure_scheduled


def main(argv: list[str]) -> int:
    try:
        app = create_app()
        check_app_role(app.extensions["engine"])
    except ConfigError as exc:
        print(f"worker: refusing to start: {exc}", file=sys.stderr)
        return 2
    burst = "--burst" in argv
    with app.app_context():
        connection = app.extensions["redis"]
        ensure_scheduled(connection)
        queues = [get_queue(connection, name) for name in QUEUE_NAMES]
        worker = Worker(queues, connection=connection, serializer=JSONSerializer)
        worker.work(with_scheduler=True, burst=burst, logging_level=app.config["BI"].LOG_LEVEL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
