"""cwsim: a faithful local simulator of the ConnectWise PSA REST API slice Better Invoice uses.

In-process use::

    from cwsim import serve_in_thread
    sim = serve_in_thread(port=0, invoices=60, latency_ms=0)
    ... sim.url, sim.company_id, sim.public_key, sim.private_key, sim.state ...
    sim.stop()
"""

from cwsim.server import SimHandle, create_server, serve_in_thread
from cwsim.state import RequestRecord, SimConfig, SimState

__all__ = ["serve_in_thread", "create_server", "SimHandle", "SimConfig", "SimState", "RequestRecord"]
