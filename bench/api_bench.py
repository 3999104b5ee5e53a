"""The REST API under load: position and blotter queries on a big book, over loopback.

    .venv/bin/python bench/api_bench.py --db sqlite:///BOOK.db [--rate 200] [--seconds 30]

Starts ``uvicorn`` (one worker process by default) on a free loopback port against the book,
issues an API token, then sends an open-loop stream of GET requests at a fixed rate (each
request starts at its scheduled time whether or not earlier ones have answered; its latency is
measured from that scheduled time, so a server that falls behind shows it rather than slowing
the client down): half "one account's positions as of a date" (/api/positions?account=…),
half "one account's blotter page" (/api/trades?account=…&limit=50), accounts drawn at random.
Then a closed loop (8 clients, as fast as answered) for the sustainable throughput. Prints
p50/p90/p99/max latency, the achieved rate and any non-200 answers. Never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

BENCH_USER = "bench.api"
BENCH_PASSWORD = "bench-api-load-2024"


@dataclass
class Measured:
    label: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        other = {k: v for k, v in self.statuses.items() if k != 200}
        return (f"{self.label}: {len(self.latencies_ms):,} requests in {self.seconds:.1f} s "
                f"({self.rate:,.0f}/s); latency ms p50 {self.quantile(0.5):.1f}, "
                f"p90 {self.quantile(0.9):.1f}, p99 {self.quantile(0.99):.1f}, "
                f"max {max(self.latencies_ms, default=float('nan')):.1f}"
                + (f"; non-200: {other}" if other else ""))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str) -> tuple[str, list[str], dt.date]:
    """A bench user and token, the accounts, and the book's last trade date."""
    from zaplecze.bootstrap import open_book
    from zaplecze.services import identity
    from zaplecze.services.audit_trail import Actor
    from zaplecze.store.db import read_connection

    book = open_book(url, create=True)  # also migrates an older bench book
    with read_connection(book.engine) as connection:
        exists = identity.get_user(connection, BENCH_USER) is not None
        accounts = [row[0] for row in connection.exec_driver_sql(
            "SELECT account FROM accounts ORDER BY account")]
        last = connection.exec_driver_sql("SELECT MAX(trade_date) FROM trades").scalar()
    actor = Actor("bench", "bench")
    if not exists:
        identity.add_user(book.engine, actor, BENCH_USER, BENCH_PASSWORD, ["operations"])
    token = identity.issue_token(book.engine, actor, BENCH_USER,
                                 ["positions:read", "trades:read"], 1)
    book.engine.dispose()
    return token, accounts, dt.date.fromisoformat(last)


@contextlib.contextmanager
def server(url: str, port: int, workers: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "ZAPLECZE_DB": url}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; a full pipe would stall it
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory",
         "zaplecze.interfaces.web.app:app_from_environment", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                        timeout=0.2):
                break
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(log.read().decode(errors="replace"))
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        log.close()


def _paths(accounts: list[str], as_of: dt.date, rng: random.Random) -> Iterator[tuple[str, str]]:
    while True:
        account = rng.choice(accounts)
        if rng.random() < 0.5:
            yield "positions", f"/api/positions?account={account}&as_of={as_of}"
        else:
            yield "blotter", f"/api/trades?account={account}&limit=50"


async def open_loop(base: str, token: str, accounts: list[str], as_of: dt.date, rate: float,
                    seconds: float, seed: int) -> dict[str, Measured]:
    import httpx

    rng = random.Random(seed)
    results = {"positions": Measured("positions (open loop)"),
               "blotter": Measured("blotter (open loop)")}
    count = int(rate * seconds)
    paths = _paths(accounts, as_of, rng)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                 limits=limits, timeout=10) as client:
        start = time.perf_counter()

        async def one(index: int, kind: str, path: str) -> None:
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status = (await client.get(path)).status_code
            except httpx.HTTPError:
                status = 0  # no answer in time: counted, shown as status 0
            measured = results[kind]
            measured.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
            measured.statuses[status] = measured.statuses.get(status, 0) + 1

        await asyncio.gather(*(one(i, *next(paths)) for i in range(count)))
        elapsed = time.perf_counter() - start
    for measured in results.values():
        measured.seconds = elapsed
    return results


async def closed_loop(base: str, token: str, accounts: list[str], as_of: dt.date,
                      clients: int, seconds: float, seed: int) -> Measured:
    import httpx

    rng = random.Random(seed)
    paths = _paths(accounts, as_of, rng)
    measured = Measured(f"mixed (closed loop, {clients} clients)")
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30) as client:
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() - start < seconds:
                _, path = next(paths)
                sent = time.perf_counter()
                response = await client.get(path)
                measured.latencies_ms.append((time.perf_counter() - sent) * 1000)
                measured.statuses[response.status_code] = (
                    measured.statuses.get(response.status_code, 0) + 1)

        await asyncio.gather(*(worker() for _ in range(clients)))
        measured.seconds = time.perf_counter() - start
    return measured


def run(url: str, rate: float = 200, seconds: float = 30, seed: int = 7,
        workers: int = 1) -> list[Measured]:
    token, accounts, last = prepare(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with server(url, port, workers):
        asyncio.run(open_loop(base, token, accounts, last, 20, 3, seed))  # warm up
        results = asyncio.run(open_loop(base, token, accounts, last, rate, seconds, seed))
        throughput = asyncio.run(closed_loop(base, token, accounts, last, 8, 10, seed))
    both = Measured(f"all (open loop at {rate:.0f}/s)")
    for measured in results.values():
        both.latencies_ms += measured.latencies_ms
        for status, n in measured.statuses.items():
            both.statuses[status] = both.statuses.get(status, 0) + n
        both.seconds = measured.seconds
    return [both, *results.values(), throughput]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the book's URL (sqlite:///… or postgresql://…)")
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    for measured in run(args.db, args.rate, args.seconds, workers=args.workers):
        print(measured.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
