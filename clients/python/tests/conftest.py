"""A real `vidx serve` for the suite: the binary from VIDX_BIN, else the
repository's target/release/vidx, on ephemeral loopback ports with a
temporary data directory and its metrics listener, JSON logs read for the
addresses."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import threading
import time
from dataclasses import dataclass, field

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def vidx_bin() -> pathlib.Path:
    p = pathlib.Path(os.environ.get("VIDX_BIN", REPO / "target" / "release" / "vidx"))
    if not p.is_file():
        raise RuntimeError(f"no vidx binary at {p}: build it (cargo build --release) or set VIDX_BIN")
    return p


@dataclass
class Server:
    proc: subprocess.Popen
    data_dir: pathlib.Path
    target: str = ""
    metrics: str = ""
    lines: list = field(default_factory=list)

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics}"


def _read(server: Server, ready: threading.Event) -> None:
    for raw in server.proc.stderr:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        server.lines.append(line)
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("message") == "metrics serving":
            server.metrics = ev["listen"]
        if ev.get("message") == "vidx ready":
            server.target = ev["listen"]
            ready.set()
    ready.set()


def start_server(data: pathlib.Path, *extra: str) -> Server:
    """Starts `vidx serve` on `data` (with `extra` flags) and waits until it listens with every collection open ("vidx ready")."""
    proc = subprocess.Popen(
        [
            str(vidx_bin()), "serve",
            "--data-dir", str(data),
            "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0",
            "--log-format", "json",
            "--seal-threshold", "2000",
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    s = Server(proc=proc, data_dir=data)
    ready = threading.Event()
    threading.Thread(target=_read, args=(s, ready), daemon=True).start()
    ready.wait(60)
    if not s.target:
        proc.kill()
        raise RuntimeError("vidx serve did not come up:\n" + "\n".join(s.lines[-20:]))
    return s


def stop_server(s: Server) -> None:
    s.proc.terminate()
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        s.proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """An open server (no credentials configured: every caller is admin)."""
    s = start_server(tmp_path_factory.mktemp("vidx-data"))
    yield s
    stop_server(s)


@pytest.fixture
def client(server):
    from vidx_client import Client

    with Client(server.target, timeout=60) as c:
        yield c


_names = iter(range(1_000_000))


@pytest.fixture
def name():
    """A fresh collection name per test."""
    return f"t{next(_names)}-{int(time.time() * 1000) % 100000}"
