"""``zaplecze serve``: the listening sockets and the worker processes (interfaces/web/server.py).

No timing is asserted (the bench measures); what is shown is the mechanism the latency rests
on: Nagle's algorithm off on every accepted connection, several workers answering on one port,
and a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI, ROOT, run_cli
from web_support import free_port
from zaplecze.interfaces.web.server import listening_socket


def test_connections_accepted_by_asyncio_have_nagle_off() -> None:
    async def accepted_nodelay() -> int:
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                found.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = listening_socket("127.0.0.1", 0)
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only then
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        value = await asyncio.wait_for(found, 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


def test_two_sockets_share_a_port_only_when_asked() -> None:
    first = listening_socket("127.0.0.1", 0, shared_port=True)
    port = first.getsockname()[1]
    with first, listening_socket("127.0.0.1", port, shared_port=True):
        pass
    with listening_socket("127.0.0.1", 0) as alone, pytest.raises(OSError):
        listening_socket("127.0.0.1", alone.getsockname()[1])


def _children(pid: int) -> set[int]:
    """The worker processes of ``pid`` (multiprocessing's resource tracker left out)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in command:
                found.add(int(child))
    return found


def _get(url: str, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_serve_with_two_workers_answers_on_one_port_and_stops_cleanly(book_url: str) -> None:
    run_cli(book_url, "init", check=True)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    process = subprocess.Popen([*CLI, "--db", book_url, "serve", "--port", str(port),
                                "--workers", "2", "--no-access-log"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/api/openapi.json", deadline) == 200
        assert _get(f"{base}/api/positions", deadline) == 401  # no session, no token
        workers = _children(process.pid)
        assert len(workers) == 2, workers
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert "2 worker process(es)" in err
        assert not any(Path(f"/proc/{pid}").exists() and
                       "zombie" not in Path(f"/proc/{pid}/status").read_text()
                       for pid in workers)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                for pid in _children(process.pid):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()


def test_serve_refuses_zero_workers(tmp_path: Path) -> None:
    done = run_cli(f"sqlite:///{tmp_path / 'b.db'}", "serve", "--workers", "0")
    assert done.returncode == 2 and "at least 1" in done.stderr
