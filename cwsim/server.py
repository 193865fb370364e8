"""Running the simulator: on a background thread for tests (``serve_in_thread``) or in the foreground."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from cwsim.app import SimApp
from cwsim.state import RequestRecord, SimConfig, SimState


class QuietHandler(WSGIRequestHandler):
    """Keeps test output clean; the request log lives in ``SimState`` instead."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class SimHandle:
    """A running simulator: where it listens, the credentials it accepts, and its live state."""

    url: str  # site URL, e.g. http://127.0.0.1:PORT (no codebase)
    state: SimState
    server: BaseWSGIServer
    thread: threading.Thread | None = None

    @property
    def company_id(self) -> str:
        return self.state.config.company_id

    @property
    def public_key(self) -> str:
        return self.state.config.public_key

    @property
    def private_key(self) -> str:
        return self.state.config.private_key

    @property
    def api_url(self) -> str:
        """The API root on the versioned codebase, e.g. http://127.0.0.1:PORT/v2025_1/apis/3.0."""
        return f"{self.url}/{self.state.codebase}apis/3.0"

    @property
    def requests(self) -> list[RequestRecord]:
        return self.state.requests()

    def configure(self, **knobs: Any) -> None:
        self.state.configure(**knobs)

    def reset(self, keep_config: bool = False) -> None:
        self.state.reset(keep_config=keep_config)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def create_server(host: str = "127.0.0.1", port: int = 0, quiet: bool = True, **options: Any) -> SimHandle:
    state = SimState(SimConfig(**options))
    server = make_server(
        host, port, SimApp(state), threaded=True, request_handler=QuietHandler if quiet else None
    )
    display_host = f"[{host}]" if ":" in host else host
    return SimHandle(url=f"http://{display_host}:{server.server_port}", state=state, server=server)


def serve_in_thread(port: int = 0, host: str = "127.0.0.1", **options: Any) -> SimHandle:
    """Start a simulator on a daemon thread; ``port=0`` picks a free port. Call ``.stop()`` when done."""
    handle = create_server(host, port, **options)
    # A short poll interval keeps stop() fast (serve_forever checks for shutdown between polls).
    handle.thread = threading.Thread(
        target=handle.server.serve_forever, kwargs={"poll_interval": 0.05}, name="cwsim", daemon=True
    )
    handle.thread.start()
    return handle
