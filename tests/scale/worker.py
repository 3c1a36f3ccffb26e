"""One poller worker of the scale test, in a process of its own: ``python -m tests.scale.worker JSON``.

It runs the hub exactly as ``meterhub serve --role poller --worker-id ID --config FILE`` does
(:class:`~meterhub.poller.hub.Hub` through :func:`~meterhub.cli.serve.run_hub`, SIGTERM stops
it cleanly), except that its clock follows the simulators: they run faster than real time, and
the clock is anchored on the system-wide monotonic clock the test read them by. It prints
``port N`` once it listens, so the test can ask its ``/healthz``.

JSON: {"database_url", "config", "worker_id", "sim_now", "sim_monotonic_s", "speed"}.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from meterhub.cli.serve import configure_logging, run_hub
from meterhub.poller.clock import Clock
from meterhub.poller.config import load_config
from meterhub.poller.hub import Hub, bind_socket


def main(argument: str) -> None:
    """Serve as a poller until SIGTERM."""
    options = json.loads(argument)
    speed = float(options["speed"])
    elapsed_s = (time.monotonic() - float(options["sim_monotonic_s"])) * speed
    clock = Clock(datetime.fromisoformat(options["sim_now"]) + timedelta(seconds=elapsed_s), speed)
    configure_logging(verbose=False)
    hub = Hub(
        options["database_url"],
        load_config(Path(options["config"])),
        clock=clock,
        role="poller",
        worker_id=options["worker_id"],
    )
    sock = bind_socket("127.0.0.1", 0)
    print(f"port {sock.getsockname()[1]}", flush=True)
    run_hub(hub, sock)


if __name__ == "__main__":
    main(sys.argv[1])
