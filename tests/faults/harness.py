"""Fault-injection harness for integration tests: real brokers and a real S3/SQS stand-in that can be killed, restarted
and made flaky on demand.

Everything here runs real processes on loopback ports of its own, in temp dirs of its own, so tests can break things
without touching the shared Redis (6379) or RabbitMQ (5672) that other suites use.

- `RedisServer`: a `redis-server` with an fsync-always AOF, so queued messages survive `kill()` as well as `stop()`.
- `RabbitServer`: a separate RabbitMQ node (own node name, AMQP and distribution ports, mnesia and log dirs).
- `MotoServer`: moto's S3+SQS server as a subprocess.
- `FaultProxy`: an HTTP/1.1 reverse proxy in front of any of them that returns S3-style 500/503/SlowDown errors or drops
  connections (before or after the request reached the upstream) at a runtime-settable rate.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import amqp
import pytest

log = logging.getLogger(__name__)

REDIS_SERVER = "/usr/bin/redis-server"
RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"
# The /usr/sbin names are wrappers that `su rabbitmq` when run as root, which drops our process handle and data dirs
# owned by root; the scripts they wrap run the node directly, in the foreground, as the calling user.
RABBITMQ_BIN_DIR = "/usr/lib/rabbitmq/bin"

FAULT_KINDS: tuple[str, ...] = ("500", "503", "slowdown", "drop_before", "drop_after")


class ServiceError(RuntimeError):
    """A harness-managed process failed to start or to stop; the message carries the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the kernel picks it, so parallel runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_executable(path: str, what: str | None = None) -> str:
    """Return `path` if it is an executable; otherwise skip the test, or fail it under CI=true so CI cannot go green
    because a service binary is missing."""
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    message = f"{what or os.path.basename(path)} is not installed ({path} is missing or not executable)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + "; CI must install it")
    pytest.skip(message)


# Processes still running when the interpreter exits (a test crashed before its cleanup) are killed, so no stray
# broker outlives the test session.
_LIVE: set[_Service] = set()


@atexit.register
def _kill_leftovers() -> None:
    for service in list(_LIVE):
        with contextlib.suppress(Exception):
            service.kill()


class _Service:
    """A subprocess in its own session and temp dir, with readiness polling, graceful stop and hard kill."""

    name = "service"
    start_timeout = 20.0
    stop_timeout = 30.0

    def __init__(self, port: int | None = None, data_dir: str | os.PathLike[str] | None = None, *,
                 base_dir: str | os.PathLike[str] | None = None) -> None:
        data_dir = data_dir if data_dir is not None else base_dir  # base_dir: the same, under the name callers use
        self._owns_dir = data_dir is None
        self.dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix=f"rt-{self.name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / f"{self.name}.log"
        self.last_start_seconds: float | None = None

    # Subclasses say what to run and when it is ready.
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _ready(self) -> bool:
        raise NotImplementedError

    def _cleanup_strays(self) -> None:
        """Kill processes of this service that escaped its process group (none by default)."""

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the process's stdout/stderr, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> Self:
        """Start the process and block until it serves requests; raise ServiceError (and kill it) otherwise."""
        if self.running:
            return self
        began = time.monotonic()
        with open(self.log_path, "ab") as out:
            out.write(f"\n===== {self.name} start {time.strftime('%H:%M:%S')} =====\n".encode())
            out.flush()
            # A new session makes the whole tree signalable as one group, and keeps Ctrl-C of pytest from reaching it.
            self._proc = subprocess.Popen(self._command(), cwd=self.dir, env=self._env(), stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _LIVE.add(self)
        deadline = began + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.kill()
                raise ServiceError(f"{self.name} exited with {code} while starting:\n{self.log_tail()}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(f"{self.name} not ready after {self.start_timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.last_start_seconds = time.monotonic() - began
        log.info("%s ready on port %d in %.2f s", self.name, self.port, self.last_start_seconds)
        return self

    def _signal_leader(self) -> None:
        """Ask for a graceful shutdown (SIGTERM to the process we started)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> None:
        """Shut down gracefully, as an operator or orchestrator would; kill it if that takes longer than `timeout`."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._signal_leader()
            try:
                proc.wait(timeout if timeout is not None else self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within the timeout; killing it", self.name)
                self.kill()
                return
        self._reap()

    def kill(self) -> None:
        """SIGKILL the whole process tree: a crash, with no chance to flush or say goodbye."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        self._reap()

    def _reap(self) -> None:
        proc = self._proc
        if proc is not None:
            # Anything left in the group once the leader is gone is a stray.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._cleanup_strays()
        self._proc = None
        _LIVE.discard(self)

    def restart(self) -> Self:
        """Graceful stop, then start on the same port with the same data dir."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and delete the temp dir (only if the harness created it)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} port={self.port} running={self.running} dir={self.dir}>"


class RedisServer(_Service):
    """A real redis-server whose AOF is fsynced on every write, so a restart (even after SIGKILL) keeps queued
    messages as a production broker configured for durability would."""

    name = "redis"

    def __init__(self, port: int | None = None, data_dir: str | os.PathLike[str] | None = None, *,
                 base_dir: str | os.PathLike[str] | None = None, binary: str = REDIS_SERVER,
                 extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(port, data_dir, base_dir=base_dir)
        self.binary = binary
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--daemonize", "no", "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--logfile", "", *self.extra_args]

    def _ready(self) -> bool:
        # Raw RESP, so readiness does not depend on a client library; "-LOADING" (AOF replay) is not ready yet.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class RabbitServer(_Service):
    """A separate RabbitMQ node for tests that stop, kill or restart the broker.

    It has its own node name, AMQP and distribution ports, mnesia/log dirs, Erlang cookie (HOME is its temp dir) and an
    empty plugin list (no management listener on 15672). It ignores /etc/rabbitmq entirely: that config binds 5672.
    """

    name = "rabbitmq"
    start_timeout = 90.0
    stop_timeout = 60.0

    def __init__(self, port: int | None = None, data_dir: str | os.PathLike[str] | None = None, *,
                 base_dir: str | os.PathLike[str] | None = None, dist_port: int | None = None, extra_config: str = "",
                 bin_dir: str = RABBITMQ_BIN_DIR) -> None:
        super().__init__(port, data_dir, base_dir=base_dir)
        self._dist_port = dist_port or free_port()
        while self._dist_port == self._port:
            self._dist_port = free_port()
        self.node = f"rt-{self.port}@localhost"
        self.bin_dir = bin_dir
        self.extra_config = extra_config
        self.home = self.dir / "home"
        for sub in ("home", "mnesia", "log"):
            (self.dir / sub).mkdir(exist_ok=True)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        # guest may log in only over loopback (the default, kept explicit); the listener is ours alone.
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users.guest = true\n{extra_config}\n")

    @property
    def dist_port(self) -> int:
        return self._dist_port

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            # The cookie is created in (and read from) HOME: ours, so nothing is written to /root.
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            # The system env file sets NODENAME=rabbit@localhost; an empty one of ours keeps it out.
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def _command(self) -> list[str]:
        return [os.path.join(self.bin_dir, "rabbitmq-server")]

    def _ready(self) -> bool:
        # The port opens before boot finishes; only a completed AMQP handshake (with login) means ready.
        conn = amqp.Connection(host=f"127.0.0.1:{self.port}", userid="guest", password="guest", virtual_host="/",
                               connect_timeout=2)
        try:
            conn.connect()
        except Exception:
            with contextlib.suppress(Exception):
                conn.collect()
            return False
        with contextlib.suppress(Exception):
            conn.close()
        return True

    def _signal_leader(self) -> None:
        # The foreground script traps SIGTERM and SIGTERMs the VM, which RabbitMQ treats as `rabbitmqctl stop`.
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run `rabbitmqctl -n NODE ARGS...` against this node (e.g. `ctl("list_queues")`)."""
        return subprocess.run([os.path.join(self.bin_dir, "rabbitmqctl"), "-n", self.node, *args], env=self._env(),
                              cwd=self.dir, capture_output=True, text=True, timeout=timeout, check=False)

    def node_pids(self) -> list[int]:
        """Live processes of this node, found by their environment: the VM's port programs (erl_child_setup and what
        it spawns) run in sessions of their own, out of reach of killpg. epmd is shared and left alone."""
        marker = f"RABBITMQ_MNESIA_BASE={self.dir / 'mnesia'}".encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm != "epmd" and marker in environ.split(b"\0"):
                pids.append(int(entry))
        return pids

    def _cleanup_strays(self) -> None:
        deadline = time.monotonic() + 5
        while self.node_pids() and time.monotonic() < deadline:
            time.sleep(0.2)  # They exit on their own once the VM's pipes close; give them a moment.
        strays = self.node_pids()
        for pid in strays:
            log.warning("killing stray RabbitMQ process %d of %s", pid, self.node)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while strays and (strays := self.node_pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if strays:
            raise ServiceError(f"processes of {self.node} survive SIGKILL: {strays}")


class MotoServer(_Service):
    """moto's server (all services, S3 and SQS included, on one port) as a subprocess, so it can be stopped or killed
    like a real endpoint and does not share the test process's GIL."""

    name = "moto"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MOTO_PORT", None)  # moto prefers it over nothing, and we pass -p anyway.
        return env

    def _ready(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # Any HTTP answer means it is serving.
        except OSError:
            return False
        return True

    def reset(self) -> None:
        """Drop all of moto's state (buckets, queues, ...)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10).close()


# ---------------------------------------------------------------------------------------------------------------------
# FaultProxy

# Per RFC 9110 these describe one connection, not the message; the proxy speaks for itself on both sides.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                         "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
_ERRORS: dict[str, tuple[int, str, str]] = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    proxy: FaultProxy


class _ProxyHandler(BaseHTTPRequestHandler):
    """One client connection: reads each request whole, then forwards it, fakes an error, or drops the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, and BaseHTTPRequestHandler answers `Expect: 100-continue` itself.
    timeout = 120  # An idle keep-alive connection ends eventually.
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        log.debug("fault-proxy %s: " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)

    def handle_expect_100(self) -> bool:
        self.server.proxy._count("expect_continue")
        return super().handle_expect_100()

    def _read_body(self) -> tuple[bytes, bool]:
        """The request body, de-chunked if it came chunked (it is re-chunked upstream). aws-chunked bodies are plain
        Content-Length bodies at this level and pass through byte for byte."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.server.proxy._count("chunked_requests")
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed mid-chunk")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped (none of the S3 clients send HTTP trailers)
                    return b"".join(parts), True
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ConnectionError("client closed mid-body")
        return body, False

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_fault(self, kind: str) -> None:
        status, code, message = _ERRORS[kind]
        request_id = uuid.uuid4().hex[:16].upper()
        if "json" in self.headers.get("Content-Type", ""):  # SQS and other AWS JSON-protocol callers
            body = f'{{"__type": "{code}", "message": "{message}"}}'.encode()
            content_type = "application/x-amz-json-1.0"
        else:
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                    f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>").encode()
            content_type = "application/xml"
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", request_id)
        self.send_header("x-fault-injected", kind)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _upstream_target(self) -> str:
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute-form (a client configured to use us as a forward proxy)
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.server.proxy._upstream_prefix + (target or "/")

    def _forward(self, body: bytes, chunked: bool) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        proxy = self.server.proxy
        # A fresh upstream connection per request: no stale keep-alive to retry, so no request is ever sent twice.
        conn = http.client.HTTPConnection(proxy._upstream_host, proxy._upstream_port, timeout=proxy.upstream_timeout)
        listed = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        conn.putrequest(self.command, self._upstream_target(), skip_host=True, skip_accept_encoding=True)
        if "Host" not in self.headers:
            conn.putheader("Host", proxy._upstream_netloc)
        for name, value in self.headers.items():
            lower = name.lower()
            # Expect is answered here already; the upstream gets the body at once.
            if lower in _HOP_BY_HOP or lower in listed or lower == "expect" or (chunked and lower == "content-length"):
                continue
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(body if (body or chunked) else None, encode_chunked=chunked)
        return conn, conn.getresponse()

    def _relay(self, resp: http.client.HTTPResponse) -> None:
        """Status, headers and body as the upstream sent them; the body streams through in 64 KiB pieces."""
        no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        length = resp.getheader("Content-Length")
        rechunk = not no_body and length is None
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if no_body:
            return
        while data := (resp.read1(65536) if rechunk else resp.read(65536)):
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data) if rechunk else data)
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")

    def _handle(self) -> None:
        proxy = self.server.proxy
        try:
            body, chunked = self._read_body()
        except (ValueError, OSError) as error:
            log.debug("fault-proxy: unreadable request %s %s: %s", self.command, self.path, error)
            self._drop()
            return
        kind = proxy._choose(self.command)
        if kind == "drop_before":
            self._drop()
            return
        if kind in _ERRORS:
            self._send_fault(kind)
            return
        try:
            conn, resp = self._forward(body, chunked)
        except (OSError, http.client.HTTPException) as error:
            proxy._count("upstream_errors")
            log.warning("fault-proxy: upstream failed for %s %s: %s", self.command, self.path, error)
            self.send_error(502, f"upstream failed: {error}")
            return
        try:
            proxy._count("forwarded")
            if kind == "drop_after":
                resp.read()  # The upstream has done the work; the client never hears of it.
                self._drop()
                return
            self._relay(resp)
            proxy._count("responses")
        except (OSError, http.client.HTTPException) as error:
            log.debug("fault-proxy: relay of %s %s broke: %s", self.command, self.path, error)
            self._drop()
        finally:
            conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle


class FaultProxy:
    """HTTP reverse proxy that injects S3-style faults into a configurable share of requests.

    Fault kinds: "500" (InternalError), "503" (ServiceUnavailable), "slowdown" (503 SlowDown, S3 throttling),
    "drop_before" (close the connection without forwarding or answering), "drop_after" (forward, so the request takes
    effect upstream, then close without answering: the client cannot tell whether its PUT happened). Requests are read
    whole before anything else, so every fault leaves the client connection in a defined state.
    """

    def __init__(self, upstream: str, port: int = 0, upstream_timeout: float = 60.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = upstream
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._upstream_netloc = parts.netloc
        self._upstream_prefix = parts.path.rstrip("/")
        self.upstream_timeout = upstream_timeout
        self._port = port
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._rate = 0.0
        self._kinds: tuple[str, ...] = FAULT_KINDS
        self._methods: frozenset[str] | None = None
        self._counts: Counter[str] = Counter()
        self._by_method: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._faults_by_method: Counter[tuple[str, str]] = Counter()
        self._connections: set[socket.socket] = set()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_faults(self, rate: float, kinds: tuple[str, ...] = FAULT_KINDS, methods: set[str] | None = None,
                   seed: int | None = None) -> None:
        """From now on, fail `rate` (0..1) of the requests whose method is in `methods` (all if None) with a kind drawn
        uniformly from `kinds`; `seed` makes the sequence of draws reproducible."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], not {rate}")
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        with self._lock:
            self._rate = rate
            self._kinds = tuple(kinds)
            self._methods = frozenset(m.upper() for m in methods) if methods is not None else None
            if seed is not None:
                self._rng = random.Random(seed)

    def clear(self) -> None:
        """Stop injecting faults (counters are kept)."""
        with self._lock:
            self._rate = 0.0

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters: requests received (total and per method), forwarded upstream, relayed back,
        injected faults per kind ("faults") and per (method, kind) ("by_method"), upstream errors, and how many
        requests came with `Expect: 100-continue` or chunked."""
        with self._lock:
            return {
                "received": self._counts["received"],
                "received_by_method": dict(self._by_method),
                "forwarded": self._counts["forwarded"],
                "responses": self._counts["responses"],
                "faults": {kind: self._faults[kind] for kind in FAULT_KINDS},
                "faults_total": sum(self._faults.values()),
                "by_method": dict(self._faults_by_method),
                "upstream_errors": self._counts["upstream_errors"],
                "expect_continue": self._counts["expect_continue"],
                "chunked_requests": self._counts["chunked_requests"],
            }

    def reset_stats(self) -> None:
        with self._lock:
            for counter in (self._counts, self._by_method, self._faults, self._faults_by_method):
                counter.clear()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _choose(self, method: str) -> str | None:
        """Count the request and decide its fate (None: forward it untouched)."""
        with self._lock:
            self._counts["received"] += 1
            self._by_method[method] += 1
            if self._rate <= 0 or (self._methods is not None and method not in self._methods):
                return None
            if self._rng.random() >= self._rate:
                return None
            kind = self._rng.choice(self._kinds)
            self._faults[kind] += 1
            self._faults_by_method[(method, kind)] += 1
            return kind

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(sock)

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _ProxyServer(("127.0.0.1", self._port), _ProxyHandler)
        self._server.proxy = self
        self._port = self._server.server_address[1]  # kept, so a restarted proxy listens where clients expect it
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"fault-proxy-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open client connection (handler threads then end on their own)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
