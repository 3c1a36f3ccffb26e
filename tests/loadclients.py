"""API clients in a process of their own, as real clients are: each thread sends GETs one after another.

Run as ``python -m tests.loadclients BASE_URL KEY PATH PARAMS_JSON CLIENTS REQUESTS``; every
answer prints one line, ``ok <bytes>`` or ``failed <status> <text>``, as soon as it arrives. The
bodies are counted, never parsed, so the clients cost the server's process nothing.
"""

from __future__ import annotations

import json
import sys
import threading

import httpx

_TIMEOUT_S = 300.0


def _client(
    base_url: str, key: str, path: str, params: dict[str, str], requests: int, lock: threading.Lock
) -> None:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=_TIMEOUT_S) as client:
        for _ in range(requests):
            try:
                answer = client.get(path, params=params)
                line = f"ok {len(answer.content)}" if answer.status_code == 200 else (
                    f"failed {answer.status_code} {answer.text[:200]!r}"
                )
            except httpx.HTTPError as exc:
                line = f"failed {type(exc).__name__}"
            with lock:
                print(line, flush=True)


def main(argv: list[str]) -> None:
    """Run the clients the arguments ask for and return when all have their answers."""
    base_url, key, path, params_json, clients, requests = argv
    params = json.loads(params_json)
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_client, args=(base_url, key, path, params, int(requests), lock))
        for _ in range(int(clients))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1:])
