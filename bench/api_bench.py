"""The REST API under load: position and blotter queries on a big book, over loopback.

    .venv/bin/python bench/api_bench.py --db sqlite:///BOOK.db [--rate 200] [--seconds 30]

Starts ``zaplecze serve`` (two worker processes by default: one per core here) on a free
loopback port against the book and issues an API token. Then an open-loop stream of GET
requests at a fixed rate: each request starts at its scheduled time whether or not earlier
ones have answered, and its latency is measured from that time, so a server that falls behind
shows it rather than slowing the client down. Half are "one account's positions as of a date"
(/api/positions?account=…), half "one account's blotter page" (/api/trades?account=…&limit=50),
accounts drawn at random. A warm-up at the same rate comes first (printed, not counted); a
closed loop (8 clients, as fast as answered) last, for the sustainable throughput. Prints
p50/p90/p99/max latency, the achieved rate and any non-200 answers. Never asserts on time.

The client speaks HTTP/1.1 by hand over keep-alive connections, so that it costs the two cores
little: what is measured is the server.
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
        [sys.executable, "-m", "zaplecze", "--db", url, "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--no-access-log"],
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


class _Connection:
    """One keep-alive HTTP/1.1 connection, spoken by hand: a GET and its answer cost the client
    a few tens of microseconds, so on a two-core machine the load generator leaves the cores to
    the server (an httpx client spent about a millisecond of CPU per request here)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.perf_counter()

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str, token: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                          f"{token}\r\n\r\n".encode("ascii"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


KEEP_ALIVE_S = 4.0  # uvicorn closes a connection idle for 5 s; the client lets go sooner


def _take(idle: list[_Connection]) -> _Connection | None:
    """The most recently used idle connection still safely alive, or None."""
    while idle:
        connection = idle.pop()
        if time.perf_counter() - connection.used < KEEP_ALIVE_S:
            return connection
        connection.close()
    return None


async def open_loop(port: int, token: str, accounts: list[str], as_of: dt.date, rate: float,
                    seconds: float, seed: int,
                    idle: list[_Connection] | None = None) -> dict[str, Measured]:
    """``idle``: connections kept alive from an earlier run (and left open for a later one)."""
    rng = random.Random(seed)
    results = {"positions": Measured("positions (open loop)"),
               "blotter": Measured("blotter (open loop)")}
    count = int(rate * seconds)
    paths = _paths(accounts, as_of, rng)
    keep = idle is not None
    idle = [] if idle is None else idle  # a request takes an idle connection or opens one
    start = time.perf_counter()

    async def one(index: int, kind: str, path: str) -> None:
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        status = 0  # no answer in time (10 s), or refused: counted, shown as status 0
        while True:
            connection = _take(idle)
            reused = connection is not None
            try:
                connection = connection or await _Connection.open(port)
                status = await asyncio.wait_for(connection.get(path, token), 10)
                connection.used = time.perf_counter()
                idle.append(connection)
                break
            except (OSError, asyncio.IncompleteReadError):
                if not reused:  # a kept-alive one the server had closed: take another
                    break
            except TimeoutError:
                break
        measured = results[kind]
        measured.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        measured.statuses[status] = measured.statuses.get(status, 0) + 1

    # Each request is started at its time by this loop (not thousands of sleeping tasks made
    # at once, which would keep the client's own loop busy when the first ones are due).
    tasks = []
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, *next(paths))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    if not keep:
        for connection in idle:
            connection.close()
    for measured in results.values():
        measured.seconds = elapsed
    return results


async def closed_loop(port: int, token: str, accounts: list[str], as_of: dt.date,
                      clients: int, seconds: float, seed: int) -> Measured:
    rng = random.Random(seed)
    paths = _paths(accounts, as_of, rng)
    measured = Measured(f"mixed (closed loop, {clients} clients)")
    start = time.perf_counter()

    async def worker() -> None:
        connection = await _Connection.open(port)
        while time.perf_counter() - start < seconds:
            _, path = next(paths)
            sent = time.perf_counter()
            status = await connection.get(path, token)
            measured.latencies_ms.append((time.perf_counter() - sent) * 1000)
            measured.statuses[status] = measured.statuses.get(status, 0) + 1
        connection.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    measured.seconds = time.perf_counter() - start
    return measured


WARM_UP_S = 5.0


async def _warm_then_measure(port: int, token: str, accounts: list[str], as_of: dt.date,
                             rate: float, seconds: float, seed: int) -> dict[str, Measured]:
    """The steady state: first 3 s at 20/s and WARM_UP_S at the rate (each worker thread opens
    its database connection and fills its caches; the client opens its connections), printed
    but not counted; then the measured run on the same connections."""
    idle: list[_Connection] = []
    await open_loop(port, token, accounts, as_of, 20, 3, seed + 2, idle)  # gently, from cold
    warm = await open_loop(port, token, accounts, as_of, rate, WARM_UP_S, seed + 1, idle)
    both = Measured(f"warm-up, not counted ({WARM_UP_S:.0f} s at {rate:.0f}/s)")
    for measured in warm.values():
        both.latencies_ms += measured.latencies_ms
        both.seconds = measured.seconds
    print(both.line(), file=sys.stderr)
    results = await open_loop(port, token, accounts, as_of, rate, seconds, seed, idle)
    for connection in idle:
        connection.close()
    return results


def run(url: str, rate: float = 200, seconds: float = 30, seed: int = 7,
        workers: int = 2) -> list[Measured]:
    token, accounts, last = prepare(url)
    port = _free_port()
    with server(url, port, workers):
        results = asyncio.run(_warm_then_measure(port, token, accounts, last, rate, seconds, seed))
        throughput = asyncio.run(closed_loop(port, token, accounts, last, 8, 10, seed))
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
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    args = parser.parse_args()
    for measured in run(args.db, args.rate, args.seconds, workers=args.workers):
        print(measured.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
