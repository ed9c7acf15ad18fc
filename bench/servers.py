"""Server processes: ``tsunagu serve`` and the reference, each started, waited for, measured and stopped."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from bench.databases import SECRET
from core.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent
TSUNAGU = BIN / "tsunagu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**variables: str) -> dict[str, str]:
    """Ours without any ``TSUNAGU_*``, then ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(variables)
    return env


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in KiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """One server process on 127.0.0.1:``port``; its output goes to ``log``."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], port: int, log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120) -> float:
        """Poll ``/readyz`` every 10 ms until it answers 200; seconds from :meth:`start` to that answer.

        :raises RuntimeError: if the process exits or ``timeout`` passes first, with the tail of its log.
        """
        assert self.process is not None
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} not ready on port {self.port} after {timeout} s:\n{self.tail()}")

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-size:]

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> None:
        """SIGINT, SIGKILL if it lingers. uvicorn shuts down cleanly on either SIGINT or SIGTERM, then raises the
        signal again; only SIGINT's (a KeyboardInterrupt) lets a profiler write its file on the way out."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


def platform_server(database_url: str, log: Path, *, log_level: str, profile: Path | None = None) -> Server:
    """``tsunagu serve`` as in production (``TSUNAGU_ENV=production``: binding by ``Host``, JSON logs), one
    process; under :mod:`bench.sampler` when ``profile`` names its report."""
    port = free_port()
    env = clean_environment(
        TSUNAGU_DATABASE_URL=database_url,
        TSUNAGU_ENV="production",
        TSUNAGU_SECRET_KEY=SECRET,
        TSUNAGU_HOST="127.0.0.1",
        TSUNAGU_PORT=str(port),
        TSUNAGU_WORKERS="1",
        TSUNAGU_LOG_LEVEL=log_level,
    )
    argv = [str(TSUNAGU), "serve"]
    if profile is not None:
        argv = [sys.executable, "-m", "bench.sampler", "--output", str(profile), *argv]
    return Server("tsunagu serve", argv, env, port, log)


def reference_server(database_url: str, modules: list[str], log: Path) -> Server:
    """The reference app under the same uvicorn options, one process."""
    from bench.reference.app import DATABASE_URL_VARIABLE, MODULES_VARIABLE

    port = free_port()
    env = clean_environment(
        TSUNAGU_HOST="127.0.0.1",
        TSUNAGU_PORT=str(port),
        **{DATABASE_URL_VARIABLE: database_url, MODULES_VARIABLE: ",".join(modules)},
    )
    return Server("reference", [sys.executable, "-m", "bench.reference.serve"], env, port, log)
