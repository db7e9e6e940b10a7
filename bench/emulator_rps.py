"""How many requests per second the emulator sustains on this machine.

Starts ``chatroster emulator`` as a real process on a free loopback port (a fresh
store in a temporary directory), then for each workload runs several client processes,
each with one keep-alive httpx connection, for a bounded time and request count, and
prints a table. Workloads: a read and a write of Nexconn (``user/get``,
``user/update``, signed like the vendor's SDK signs) and, when the CometChat module is
present, of CometChat (``GET`` and ``PUT /v3/users/{uid}``).

    PYTHONPATH=src python bench/emulator_rps.py [--seconds 3] [--clients 4]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

# Runs from a checkout: the code under test, and the helper the tests start it with.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from emulator_process import running_emulator

from chatroster.emulator.app import load_cometchat
from chatroster.emulator.config import (
    DEFAULT_API_KEY,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
)

UID = "bench1"
MAX_REQUESTS = 50_000
"""Per workload and client: a bound on the work whatever the machine."""


def nexconn_headers() -> dict[str, str]:
    nonce = str(secrets.randbelow(10**18 - 1) + 1)
    timestamp = str(int(time.time() * 1000))
    signature = hashlib.sha1((DEFAULT_APP_SECRET + nonce + timestamp).encode()).hexdigest()
    return {
        "App-Key": DEFAULT_APP_KEY,
        "Nonce": nonce,
        "Timestamp": timestamp,
        "Signature": signature,
    }


def one_request(client: httpx.Client, workload: str, n: int) -> httpx.Response:
    if workload == "nexconn read  (POST /v4/user/get)":
        return client.post("/v4/user/get", json={"userId": UID}, headers=nexconn_headers())
    if workload == "nexconn write (POST /v4/user/update)":
        body = {"userId": UID, "name": f"Bench {n}"}
        return client.post("/v4/user/update", json=body, headers=nexconn_headers())
    if workload == "cometchat read  (GET /v3/users/{uid})":
        return client.get(f"/v3/users/{UID}")
    return client.put(f"/v3/users/{UID}", json={"name": f"Bench {n}"})


@dataclass
class Tally:
    ok: int
    errors: int
    seconds: float
    latencies_ms: list[float]


def client_run(base_url: str, workload: str, seconds: float, start_at: float) -> Tally:
    """One client process: requests back to back until the time or count runs out."""
    ok = errors = 0
    latencies: list[float] = []
    headers = {"apikey": DEFAULT_API_KEY}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        while time.time() < start_at:  # every client starts together
            time.sleep(0.001)
        began = time.perf_counter()
        while ok + errors < MAX_REQUESTS and time.perf_counter() - began < seconds:
            sent = time.perf_counter()
            response = one_request(client, workload, ok + errors)
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code == 200:
                ok += 1
            else:
                errors += 1
        return Tally(ok, errors, time.perf_counter() - began, latencies)


def measure(base_url: str, workload: str, clients: int, seconds: float) -> list[str]:
    start_at = time.time() + 0.5
    with ProcessPoolExecutor(clients) as pool:
        futures = [pool.submit(client_run, base_url, workload, seconds, start_at) for _ in range(clients)]
        tallies = [future.result() for future in futures]
    ok = sum(t.ok for t in tallies)
    errors = sum(t.errors for t in tallies)
    elapsed = max(t.seconds for t in tallies)
    latencies = sorted(ms for t in tallies for ms in t.latencies_ms)
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    median = statistics.median(latencies) if latencies else 0.0
    return [
        workload,
        str(ok),
        str(errors),
        f"{elapsed:.1f}",
        f"{ok / elapsed:,.0f}",
        f"{median:.2f}",
        f"{p99:.2f}",
    ]


def prepare(base_url: str) -> None:
    """Register the user both vendors' workloads use (they share one store)."""
    with httpx.Client(base_url=base_url) as client:
        issued = client.post(
            "/v4/auth/access-token/issue",
            json={"userId": UID, "name": "Bench"},
            headers=nexconn_headers(),
        )
        issued.raise_for_status()


def print_table(rows: list[list[str]]) -> None:
    header = ["workload", "ok", "errors", "s", "req/s", "p50 ms", "p99 ms"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per workload (max 30)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (max 16)")
    args = parser.parse_args()
    seconds, clients = min(args.seconds, 30.0), max(1, min(args.clients, 16))
    cometchat = load_cometchat() is not None
    workloads = ["nexconn read  (POST /v4/user/get)", "nexconn write (POST /v4/user/update)"]
    if cometchat:
        workloads += [
            "cometchat read  (GET /v3/users/{uid})",
            "cometchat write (PUT /v3/users/{uid})",
        ]
    with (
        tempfile.TemporaryDirectory() as directory,
        running_emulator(Path(directory) / "bench.db") as emulator,
    ):
        prepare(emulator.base_url)
        rows = [measure(emulator.base_url, w, clients, seconds) for w in workloads]
    print(f"emulator on 127.0.0.1, {clients} client processes x 1 connection, {seconds:g} s each")
    print_table(rows)
    if not cometchat:
        print("(CometChat module not present: its workloads were skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
