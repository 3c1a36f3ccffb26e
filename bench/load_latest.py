"""A bounded load test of GET /api/v1/latest on loopback: 50 concurrent clients for 30 s.

    python -m bench.load_latest [--clients 50] [--duration-s 30] [--meters 50]
    python -m bench.load_latest --port 8000 --key mh_...      # a hub already running on 127.0.0.1

Without ``--port`` it seeds a fresh hub (``--meters`` meters, two readings each, an admin key)
and serves it with uvicorn in a process of its own, as ``meterhub serve`` would. Each client is
one keep-alive connection sending its next request as soon as the last is answered. It prints
the requests answered, the rate, latency percentiles and the errors (any answer but a 200 with
the expected readings, a timeout or a dropped connection). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import orjson

from bench.scenarios_api import PATH, Load, drive, seed_hub, served

MAX_DURATION_S = 300.0
MAX_CLIENTS = 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.load_latest", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent keep-alive clients (default 50)")
    parser.add_argument("--duration-s", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--meters", type=int, default=50, help="meters in a seeded hub (default 50)")
    parser.add_argument("--port", type=int, help="a hub already serving on 127.0.0.1:PORT")
    parser.add_argument("--key", help="an API key of that hub (with --port)")
    return parser


def percentile_ms(latencies_s: Sequence[float], pct: float) -> float:
    """Return the ``pct`` percentile of latencies in milliseconds (nearest rank)."""
    ordered = sorted(latencies_s)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1e3


def report(load: Load, clients: int) -> str:
    """Return the summary lines of a load run."""
    count = len(load.latencies_s)
    lines = [
        f"clients: {clients}, duration: {load.elapsed_s:.1f} s, requests answered: {count}, "
        f"rate: {count / load.elapsed_s:.0f} req/s",
        "latency ms: "
        + ", ".join(f"p{p:g} {percentile_ms(load.latencies_s, p):.1f}" for p in (50, 90, 99, 99.9))
        + f", max {max(load.latencies_s, default=float('nan')) * 1e3:.1f}"
        + (f", mean {statistics.fmean(load.latencies_s) * 1e3:.1f}" if count else ""),
        f"errors: {load.errors}" + (f" {load.error_kinds}" if load.errors else ""),
    ]
    return "\n".join(lines)


def _run(port: int, key: str, clients: int, duration_s: float, meters: int | None) -> Load:
    def expected(body: bytes) -> bool:
        return meters is None or len(orjson.loads(body)) == meters

    headers = {"X-API-Key": key}
    asyncio.run(drive(port, PATH, headers, connections=min(clients, 8), requests=200))  # warm up
    return asyncio.run(drive(port, PATH, headers, connections=clients, duration_s=duration_s, check=expected))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load and print its figures; 1 if any request failed."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration_s <= MAX_DURATION_S:
        parser.error(f"--clients must be 1..{MAX_CLIENTS} and --duration-s at most {MAX_DURATION_S:g}")
    if args.port is not None:
        if not args.key:
            parser.error("--port needs --key")
        load = _run(args.port, args.key, args.clients, args.duration_s, None)
    else:
        with tempfile.TemporaryDirectory(prefix="meterhub-load-") as folder:
            path = Path(folder) / "hub.db"
            key = seed_hub(path, args.meters)
            with served("hub", f"sqlite:///{path}") as port:
                load = _run(port, key, args.clients, args.duration_s, args.meters)
    print(f"GET {PATH} on 127.0.0.1 (loopback only)")
    print(report(load, args.clients))
    return 1 if load.errors else 0


if __name__ == "__main__":
    sys.exit(main())
