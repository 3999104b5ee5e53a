"""Running the workbench: ``zaplecze serve`` under uvicorn, in one or several processes.

The listening sockets are made here, not by uvicorn, for two reasons measured on a two-core
machine with two workers:

- asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections accepted from a socket
  whose protocol is IPPROTO_TCP, and uvicorn's own socket says protocol 0. With Nagle on, an
  answer written in two parts (head, then body) waits for the client's delayed ACK: a 404 took
  43.7 ms instead of 1.3 ms.
- With one socket shared by the workers, whichever wakes first accepts every waiting
  connection, so one worker served all eight clients of a closed loop while the other idled
  (142 requests/s, 39 % of the CPU unused). Each worker here listens on a socket of its own
  bound with SO_REUSEPORT, and the kernel spreads the connections over them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from typing import Any

import uvicorn

APP_FACTORY = "zaplecze.interfaces.web.app:app_from_environment"


def listening_socket(host: str, port: int, *, shared_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening; ``shared_port``: other
    processes may bind the same port (SO_REUSEPORT) and the kernel balances between them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _config(host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, proxy_headers=True,
                          **options)


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    sock = listening_socket(host, port, shared_port=True)
    uvicorn.Server(_config(host, port, **options)).run(sockets=[sock])


def serve(url: str, host: str, port: int, workers: int = 1, *, access_log: bool = True,
          log_level: str = "info") -> None:
    """Serve the book at ``url`` until interrupted; ``workers`` processes on one port."""
    os.environ["ZAPLECZE_DB"] = url  # each worker opens the book itself (app_from_environment)
    options = {"access_log": access_log, "log_level": log_level}
    if workers == 1:
        sock = listening_socket(host, port)
        uvicorn.Server(_config(host, port, **options)).run(sockets=[sock])
        return
    # Bind once here first, so that a port in use is an error before any worker starts.
    listening_socket(host, port, shared_port=True).close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(host, port, options), daemon=False)
                 for _ in range(workers)]
    for process in processes:
        process.start()

    def stop(signum: int, _frame: Any) -> None:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.join()
