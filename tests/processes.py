"""Real ``tsunagu`` processes for end-to-end tests: started on free ports, waited for, always stopped.

Every wait is bounded; a process that dies while being waited for fails the test with the tail of its output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from core.settings import PROJECT_ROOT

TSUNAGU = Path(sys.executable).with_name("tsunagu")
"""The console script installed next to the interpreter running the tests (``.venv/bin/tsunagu``)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tsunagu_env(database_url: str, **variables: str) -> dict[str, str]:
    """A child's environment: ours without any ``TSUNAGU_*``, then the database and ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env["TSUNAGU_DATABASE_URL"] = database_url
    env.update(variables)
    return env


def run_tsunagu(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one command to completion (bounded), output captured."""
    return subprocess.run(
        [str(TSUNAGU), *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Server:
    """A ``tsunagu`` process that serves HTTP on ``port``; its stdout and stderr go to ``log``."""

    def __init__(self, args: list[str], env: Mapping[str, str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(TSUNAGU), *args],
                env=dict(env),
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.client = httpx.Client(base_url=self.url, timeout=5)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_until_healthy(self, timeout: float = 30) -> None:
        """Poll ``/healthz`` until it answers 200; fail if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"server exited with {code}:\n{self.output()[-3000:]}")
            try:
                if self.client.get("/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not healthy on {self.url} after {timeout} s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL (the whole process group) if it does not exit within ``timeout``."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)


@contextmanager
def serving(
    count: int, args: list[str], env: Mapping[str, str], log_dir: Path, timeout: float = 30
) -> Iterator[list[Server]]:
    """Start ``count`` servers side by side (``TSUNAGU_PORT`` each), wait for all, stop all at the end."""
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            port = free_port()
            server = Server(args, {**env, "TSUNAGU_PORT": str(port)}, port, log_dir / f"server-{index}.log")
            stack.callback(server.stop)
            servers.append(server)
        for server in servers:
            server.wait_until_healthy(timeout)
        yield servers
