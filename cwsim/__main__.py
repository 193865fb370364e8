"""Command line: ``python -m cwsim --port PORT [options]``; prints URL and keys, then serves."""

from __future__ import annotations

import argparse
import sys

from cwsim.server import create_server
from cwsim.state import SimConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SimConfig()
    p = argparse.ArgumentParser(prog="python -m cwsim", description="ConnectWise PSA API simulator")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default loopback only)")
    p.add_argument("--company", dest="company_id", default=defaults.company_id)
    p.add_argument("--public-key", default=defaults.public_key)
    p.add_argument("--private-key", default=defaults.private_key)
    p.add_argument("--invoices", type=int, default=defaults.invoices, help="size of the data set")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per API request")
    p.add_argument("--budget", type=int, default=None, help="requests allowed per --budget-window, then 429")
    p.add_argument("--budget-window", type=float, default=defaults.budget_window, help="seconds")
    p.add_argument("--error-rate", type=float, default=0.0, help="probability 0..1 of an injected 5xx")
    p.add_argument("--error-status", type=int, default=500)
    p.add_argument("--no-client-id-check", dest="require_client_id", action="store_false")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = vars(parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    handle = create_server(host, port, quiet=False, **args)
    cfg = handle.state.config
    print(f"cwsim listening on {handle.url} (API: {handle.api_url})", flush=True)
    print(f"company id: {cfg.company_id}", flush=True)
    print(f"public key: {cfg.public_key}", flush=True)
    print(f"private key: {cfg.private_key}", flush=True)
    try:
        handle.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        handle.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
