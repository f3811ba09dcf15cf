"""Load-test parts shared by `make bench` (bench/run.py) and the scale drill (bench/scale_drill.py):
gunicorn instances, an HAProxy balancer in front of them, wrk runs, and the summary of repeated rounds.

Everything listens on 127.0.0.1 only. Ports: any free one, or the first free ones in BENCH_PORTS
("8600-8699") when several people share a machine and each keeps to a range.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class WorkerModel:
    """How one gunicorn instance serves: worker class, processes, threads per process."""

    worker_class: str
    workers: int
    threads: int = 1

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread {self.workers}x{self.threads}"
        return f"{self.worker_class} {self.workers}"

    def args(self) -> list[str]:
        args = ["--worker-class", self.worker_class, "--workers", str(self.workers)]
        return [*args, "--threads", str(self.threads)] if self.worker_class == "gthread" else args


# Chosen from measured numbers (docs/operations-scaling.md, "Worker model"); the Dockerfile's default too.
DEFAULT_WORKER_MODEL = WorkerModel("gthread", workers=2, threads=8)


def database_url_with_suffix(suffix: str) -> str:
    url = os.environ.get("DATABASE_URL", "postgres://anakinra@127.0.0.1:5432/anakinra")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "anakinra"
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def require(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        sys.exit(f"Needs {' and '.join(missing)} (Debian: apt-get install {' '.join(missing)}).")


_taken: set[int] = set()


def free_port() -> int:
    """A port nobody listens on: the next free one in BENCH_PORTS when set, else one the OS picks."""
    span = os.environ.get("BENCH_PORTS", "")
    candidates: Sequence[int] = [0]
    if span:
        low, _, high = span.partition("-")
        candidates = range(int(low), int(high or low) + 1)
    for port in candidates:
        if port in _taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = probe.getsockname()[1]
        _taken.add(port)
        return port
    sys.exit(f"No free port in BENCH_PORTS={span}")


def wait_http(port: int, path: str = "/healthz", *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} within {seconds:.0f} s")


class Instance:
    """One gunicorn instance (a master and its workers), in a process group of its own so that the
    whole instance can be killed at once, as when a host dies."""

    def __init__(self, env: dict[str, str], model: WorkerModel, *, name: str) -> None:
        self.port = free_port()
        self.name = name
        self.model = model
        self.log = Path(tempfile.mkstemp(prefix=f"gunicorn-{name}-", suffix=".log")[1])
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "gunicorn",
                    "anakinra_cds.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    *model.args(),
                    "--log-level",
                    "warning",
                    # Answers stay in keep-alive connections as behind a real balancer.
                    "--keep-alive",
                    "30",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_http(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"gunicorn {name} did not start:\n{self.log.read_text()[-2000:]}") from None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL to the master and every worker: no graceful shutdown, requests in flight are lost."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # any worker left behind
        self.log.unlink(missing_ok=True)


@contextmanager
def instances(env: dict[str, str], model: WorkerModel, count: int) -> Iterator[list[Instance]]:
    started: list[Instance] = []
    try:
        for index in range(count):
            started.append(Instance(env, model, name=chr(ord("a") + index)))
        yield started
    finally:
        for instance in started:
            instance.stop()


HAPROXY_CONFIG = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A request that never reached a server (refused connection: the instance is down) goes to
    # another one. Nothing that reached a server is retried: a POST may have been stored.
    retries 3
    option redispatch
    retry-on conn-failure
frontend app
    bind 127.0.0.1:{port}
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET {health_path}
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
{servers}
listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


class Balancer:
    """HAProxy (Debian's package), round robin over the instances, health-checked on `health_path`."""

    def __init__(self, backends: Sequence[Instance], *, health_path: str) -> None:
        require("haproxy")
        self.port = free_port()
        self.stats_port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="haproxy-"))
        servers = "\n".join(f"    server {b.name} 127.0.0.1:{b.port} check" for b in backends)
        config = self.folder / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(port=self.port, stats_port=self.stats_port, health_path=health_path, servers=servers)
        )
        subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], check=True)
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_http(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def balancer(backends: Sequence[Instance], *, health_path: str) -> Iterator[Balancer]:
    started = Balancer(backends, health_path=health_path)
    try:
        yield started
    finally:
        started.stop()


# --- wrk ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]


def wrk(url: str, *, seconds: float, connections: int, script: Path | None = None) -> WrkResult:
    require("wrk")
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(re.search(r"\s50%\s+([\d.]+)(us|ms|s|m)\b", out)),
        p99_ms=_ms(re.search(r"\s99%\s+([\d.]+)(us|ms|s|m)\b", out)),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),
        non_2xx=int(errors.group(1)) if errors else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def lua_script(text: str) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(text)
    return Path(script.name)


def post_script(*, path_body_template: str, headers: dict[str, str]) -> Path:
    """wrk script: POST a JSON body with a different weight (1.0-150.0 kg) each time, so no answer repeats.
    `path_body_template` is the body with `%s` where the weight goes."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()]
    lines += [
        "request = function()",
        f"  return wrk.format(nil, nil, nil, string.format({_lua(path_body_template)}, math.random(10, 1500) / 10))",
        "end",
    ]
    return lua_script("\n".join(lines) + "\n")


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# --- Rounds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The median of repeated rounds and their range: on a shared machine one round says little."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def text(self, fmt: str = "{:.0f}", unit: str = "") -> str:
        body = f"{fmt.format(self.median)}{unit} ({fmt.format(self.low)}-{fmt.format(self.high)})"
        return body


def machine_note(when: str = "before the run") -> str:
    """What else the machine was doing: load average over the last minute against the core count."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return f"{os.cpu_count()} cores"
    return f"{os.cpu_count()} cores, load average {load:.1f} {when}"
