"""Real peers for the interop tests: SIPp (Debian package ``sip-tester``)
and a Kamailio presence server (``kamailio``, ``kamailio-presence-modules``,
``kamailio-sqlite-modules``), started and stopped by the fixtures here.

Every fixture keeps the same rules:

* everything binds to 127.0.0.1, on ports the OS reports free;
* every peer runs in a session (process group) of its own and is stopped
  through that group, never by name;
* readiness and completion are polled with a deadline, never waited for by
  sleeping a fixed time;
* a missing binary fails the test with the Debian package to install.

SIPp runs ``-m N`` scenarios from ``tests/interop/sipp/``: a run is done
when sipp exits, and its exit code (0: every call passed the scenario's
checks), its ``-trace_stat`` counters and its ``-trace_msg`` message log
are what the tests assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pua.endpoint import EndpointConfig, RequestHandler, SipEndpoint
from pua.sip.address import Address
from pua.sip.digest import DigestCredentials
from pua.transaction import TimerSettings

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parent / "sipp"
KAMAILIO_DIR = Path(__file__).resolve().parent.parent / "peers" / "kamailio"
KAMAILIO_SQL = Path("/usr/share/kamailio/db_sqlite")

SIPP_PACKAGE = "sip-tester"
KAMAILIO_PACKAGES = "kamailio kamailio-presence-modules kamailio-sqlite-modules"

Transport = Literal["udp", "tcp"]

#: sipp's exit code when it could not bind a socket (a "free" port was
#: taken in between): the run is retried on other ports
SIPP_EXIT_BIND_FAILED = 254


# ----------------------------------------------------------------- helpers
def find_binary(name: str, packages: str) -> str:
    """The path of ``name``, or a test failure naming the Debian packages."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(
            f"{name} is not installed: the interop tests need the Debian package(s) "
            f"{packages} (apt-get install -y {packages})",
            pytrace=False,
        )
    return found


def free_port(kind: Transport) -> int:
    """A port on 127.0.0.1 that the OS reports free for ``kind``."""
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, sock_type) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_pair() -> int:
    """A UDP port ``p`` with ``p`` and ``p + 2`` both free (sipp's media
    sockets: it binds its -mp port and the one two above it)."""
    for _ in range(100):
        port = free_port("udp")
        if port + 2 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((HOST, port + 2))
            except OSError:
                continue
        return port
    raise AssertionError("found no pair of free UDP ports for sipp's media sockets")


def socket_bound(pid: int, port: int, kind: Transport) -> bool:
    """Whether process ``pid`` holds a socket bound to 127.0.0.1:``port``
    (for TCP: listening), read from /proc."""
    inodes = set()
    try:
        entries = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for entry in entries:
        with contextlib.suppress(OSError):
            target = os.readlink(entry)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    wanted_state = "0A" if kind == "tcp" else "07"  # TCP_LISTEN / unconnected UDP
    wanted_local = f"0100007F:{port:04X}"
    for line in Path(f"/proc/net/{kind}").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted_local and fields[3] == wanted_state and fields[9] in inodes:
            return True
    return False


async def poll(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.01
) -> None:
    """Wait until ``condition()`` holds, checking every ``interval`` seconds;
    fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``proc`` leads, if ``proc`` still runs (a
    reaped pid is never signalled: it may belong to someone else by now)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -------------------------------------------------------------------- SIPp
@dataclass
class SippResult:
    """What one sipp run left behind."""

    returncode: int
    #: the last row of the -trace_stat file, e.g. ``stats["SuccessfulCall(C)"]``
    stats: dict[str, str]
    messages: str
    log: str
    errors: str
    screen: str

    @property
    def successful(self) -> int:
        return int(self.stats.get("SuccessfulCall(C)", "-1"))

    @property
    def failed(self) -> int:
        return int(self.stats.get("FailedCall(C)", "-1"))

    def received(self, method: str | None = None) -> list[str]:
        """The messages sipp received (from its -trace_msg log), in order;
        only requests of ``method`` if given."""
        out = []
        for chunk in re.split(r"^-{20,} .*$", self.messages, flags=re.MULTILINE):
            head, _, message = chunk.strip().partition("\n")
            if " message received " not in head:
                continue
            message = message.strip()
            if method is None or message.startswith(f"{method} "):
                out.append(message)
        return out

    def sent(self) -> list[str]:
        """The messages sipp sent, in order."""
        out = []
        for chunk in re.split(r"^-{20,} .*$", self.messages, flags=re.MULTILINE):
            head, _, message = chunk.strip().partition("\n")
            if " message sent " in head:
                out.append(message.strip())
        return out

    def report(self) -> str:
        """Everything useful to explain a failed run."""
        screen = "\n".join(self.screen.splitlines()[-25:])
        return (
            f"sipp exit code {self.returncode}, successful calls {self.successful}, "
            f"failed calls {self.failed}\n--- errors\n{self.errors}\n--- log\n{self.log}"
            f"\n--- screen (end)\n{screen}\n--- messages\n{self.messages}"
        )


class SippProcess:
    """One sipp run in a session of its own, with every trace in ``workdir``."""

    def __init__(
        self,
        binary: str,
        scenario: str,
        transport: Transport,
        workdir: Path,
        *,
        calls: int,
        target: Address | None,
        extra: Sequence[str],
    ) -> None:
        path = SCENARIOS / scenario
        if not path.is_file():
            raise AssertionError(f"no such sipp scenario: {path}")
        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.transport = transport
        self.port = free_port(transport)
        self._files = {
            name: workdir / f"{name}.txt" for name in ("messages", "log", "errors", "screen")
        }
        self._stat_file = workdir / "stat.csv"
        argv = [binary]
        if target is not None:
            argv.append(f"{target.host}:{target.port}")
        argv += [
            "-sf", str(path),
            "-i", HOST,
            "-p", str(self.port),
            "-t", "u1" if transport == "udp" else "t1",
            "-m", str(calls),
            "-nostdin",
            # a safety net only: the tests' own deadlines are shorter
            "-timeout", "30s",
            "-timeout_error",
            # control and media sockets: on 127.0.0.1 and free ports too
            "-ci", HOST,
            "-cp", str(free_port("udp")),
            "-mi", HOST,
            "-mp", str(free_udp_pair()),
            "-trace_msg", "-message_file", str(self._files["messages"]),
            "-trace_logs", "-log_file", str(self._files["log"]),
            "-trace_err", "-error_file", str(self._files["errors"]),
            "-trace_stat", "-stf", str(self._stat_file),
            *extra,
        ]  # fmt: skip
        self.argv = argv
        with self._files["screen"].open("wb") as screen:
            self.proc = subprocess.Popen(
                argv,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=screen,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def address(self) -> Address:
        """Where this sipp listens (its SIP socket)."""
        return Address(self.transport, HOST, self.port)

    async def ready(self, timeout: float = 10.0) -> None:
        """Wait until sipp's SIP socket is bound (UDP) or listening (TCP)."""

        def bound() -> bool:
            if self.proc.poll() is not None:
                return True
            return socket_bound(self.proc.pid, self.port, self.transport)

        await poll(bound, timeout, f"sipp to listen on {self.transport} port {self.port}")
        if self.proc.returncode is not None:
            raise SippExited(self.result())

    async def finish(self, timeout: float = 15.0) -> SippResult:
        """Wait for sipp to end its -m calls and exit; its result."""
        try:
            await poll(lambda: self.proc.poll() is not None, timeout, "sipp to exit")
        except AssertionError:
            self.stop()
            raise AssertionError(
                f"sipp did not finish within {timeout} s\n{self.result().report()}"
            ) from None
        return self.result()

    def result(self) -> SippResult:
        def read(path: Path) -> str:
            try:
                return path.read_text(errors="replace")
            except FileNotFoundError:
                return ""

        stats: dict[str, str] = {}
        rows = list(csv.reader(read(self._stat_file).splitlines(), delimiter=";"))
        if len(rows) >= 2:
            stats = dict(zip(rows[0], rows[-1], strict=False))
        return SippResult(
            returncode=self.proc.returncode if self.proc.returncode is not None else -1,
            stats=stats,
            messages=read(self._files["messages"]),
            log=read(self._files["log"]),
            errors=read(self._files["errors"]),
            screen=read(self._files["screen"]),
        )

    def stop(self) -> None:
        _kill_group(self.proc)


class SippExited(AssertionError):
    def __init__(self, result: SippResult) -> None:
        super().__init__(f"sipp exited before it was ready\n{result.report()}")
        self.result = result


class Sipp:
    """Starts sipp runs for one test and stops whatever is left at the end."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._runs: list[SippProcess] = []

    def _launch(
        self,
        scenario: str,
        transport: Transport,
        *,
        calls: int,
        target: Address | None,
        extra: Sequence[str],
    ) -> SippProcess:
        workdir = self.workdir / f"sipp-{len(self._runs)}-{Path(scenario).stem}-{transport}"
        run = SippProcess(
            self.binary,
            scenario,
            transport,
            workdir,
            calls=calls,
            target=target,
            extra=extra,
        )
        self._runs.append(run)
        return run

    async def server(
        self,
        scenario: str,
        transport: Transport,
        *,
        calls: int = 1,
        extra: Sequence[str] = (),
    ) -> SippProcess:
        """A UAS run of ``scenario``, listening once this returns."""
        for _ in range(3):
            run = self._launch(scenario, transport, calls=calls, target=None, extra=extra)
            try:
                await run.ready()
            except SippExited as exc:
                if exc.result.returncode != SIPP_EXIT_BIND_FAILED:
                    raise
                continue  # a port went to someone else in between: other ports
            return run
        raise AssertionError("sipp could not bind its sockets three times in a row")

    def client(
        self,
        scenario: str,
        transport: Transport,
        target: Address,
        *,
        calls: int = 1,
        extra: Sequence[str] = (),
    ) -> SippProcess:
        """A UAC run of ``scenario`` sending to ``target``; it starts at once."""
        return self._launch(scenario, transport, calls=calls, target=target, extra=extra)

    def close(self) -> None:
        for run in self._runs:
            run.stop()


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Sipp]:
    """Start sipp runs; every one still running is killed after the test."""
    runner = Sipp(find_binary("sipp", SIPP_PACKAGE), tmp_path)
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(params=["udp", "tcp"])
def transport(request: pytest.FixtureRequest) -> Transport:
    """Run the test over UDP and over TCP."""
    value: Transport = request.param
    return value


# --------------------------------------------------------------- endpoints
class Endpoints:
    """Starts pua endpoints for one test (UDP and TCP on 127.0.0.1, free
    ports) and closes them at the end."""

    def __init__(self) -> None:
        self._started: list[SipEndpoint] = []

    async def start(
        self,
        *,
        timers: TimerSettings | None = None,
        credentials: Sequence[DigestCredentials] = (),
        handler: RequestHandler | None = None,
    ) -> SipEndpoint:
        config = EndpointConfig(
            host=HOST,
            udp_port=0,
            tcp_port=0,
            timers=timers or TimerSettings(),
            credentials=list(credentials),
        )
        endpoint = SipEndpoint(config, handler=handler)
        await endpoint.start()
        self._started.append(endpoint)
        return endpoint

    async def close(self) -> None:
        for endpoint in self._started:
            await endpoint.close()


@pytest.fixture
async def endpoints() -> AsyncIterator[Endpoints]:
    started = Endpoints()
    try:
        yield started
    finally:
        await started.close()


# --------------------------------------------------------------- Kamailio
@dataclass(frozen=True)
class PresenceServer:
    """A running Kamailio presence server (tests/peers/kamailio)."""

    udp: Address
    tcp: Address
    workdir: Path
    db_path: Path
    log_path: Path

    def address(self, transport: Transport) -> Address:
        return self.udp if transport == "udp" else self.tcp

    def presentities(self, username: str) -> list[dict[str, Any]]:
        """The rows of the ``presentity`` table for ``username``."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT username, domain, event, etag, expires, received_time, body"
                " FROM presentity WHERE username = ? ORDER BY id",
                (username,),
            ).fetchall()
        return [dict(row) for row in rows]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _options_probe(port: int, timeout: float) -> str | None:
    """The status line of the reply to one OPTIONS sent over UDP to
    127.0.0.1:``port``, or ``None`` if none came within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        tag = f"{os.getpid()}-{time.monotonic_ns()}"
        request = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK-ready-{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={tag}\r\n"
            f"To: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: ready-{tag}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), (HOST, port))
            data = sock.recv(65535)
        except OSError:  # timeout, or an ICMP port-unreachable reported late
            return None
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def _create_database(path: Path) -> None:
    """The presence schema Debian ships, in a new SQLite file (WAL, so the
    tests can read while Kamailio writes)."""
    scripts = [KAMAILIO_SQL / "standard-create.sql", KAMAILIO_SQL / "presence-create.sql"]
    for script in scripts:
        if not script.is_file():
            pytest.fail(
                f"{script} is missing: install the Debian package kamailio-sqlite-modules "
                "(apt-get install -y kamailio-sqlite-modules)",
                pytrace=False,
            )
    with contextlib.closing(sqlite3.connect(path)) as db:
        for script in scripts:
            db.executescript(script.read_text())
        db.execute("PRAGMA journal_mode=WAL")
        db.commit()


def _stop_kamailio(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to Kamailio's main process (it stops its children), SIGKILL
    to its process group if it does not exit in time."""
    pgid = proc.pid
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(proc)

    def group_alive() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 5
    while group_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if group_alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


class KamailioPresence:
    """One Kamailio presence server (tests/peers/kamailio/presence-server.cfg)
    on fixed UDP and TCP ports of 127.0.0.1, with its SQLite database and its
    log in ``workdir``.  It can be stopped and started again on the same
    ports, with the same database or a new, empty one."""

    def __init__(
        self,
        workdir: Path,
        *,
        udp_port: int | None = None,
        tcp_port: int | None = None,
        db_path: Path | None = None,
    ) -> None:
        self.binary = find_binary("kamailio", KAMAILIO_PACKAGES)
        self.config = KAMAILIO_DIR / "presence-server.cfg"
        self.workdir = workdir
        self.rundir = workdir / "run"
        self.sipdump_dir = workdir / "sipdump"
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.sipdump_dir.mkdir(exist_ok=True)
        self.udp_port = free_port("udp") if udp_port is None else udp_port
        self.tcp_port = free_port("tcp") if tcp_port is None else tcp_port
        self.server = PresenceServer(
            udp=Address("udp", HOST, self.udp_port),
            tcp=Address("tcp", HOST, self.tcp_port),
            workdir=workdir,
            db_path=workdir / "presence.db" if db_path is None else db_path,
            log_path=workdir / "kamailio.log",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        #: how many times the server was started
        self.starts = 0

    def _args(self) -> list[str]:
        return [
            "-f", str(self.config),
            "-Y", str(self.rundir),
            "-m", "64",
            "-M", "8",
            "-A", f"UDP_PORT={self.udp_port}",
            "-A", f"TCP_PORT={self.tcp_port}",
            "-A", f'DBURL="sqlite://{self.server.db_path}"',
            "-A", f'SIPDUMP_DIR="{self.sipdump_dir}"',
        ]  # fmt: skip

    def check_config(self) -> None:
        """``kamailio -c``: fail the test if the configuration is refused."""
        check = subprocess.run(
            [self.binary, "-c", *self._args()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check.returncode != 0:
            pytest.fail(
                f"kamailio rejects {self.config} (are the Debian packages {KAMAILIO_PACKAGES} "
                f"all installed?):\n{check.stdout}{check.stderr}",
                pytrace=False,
            )

    def create_database(self) -> None:
        """A new database with the empty presence schema, replacing any
        earlier one (and its WAL files).  Only while the server is stopped."""
        if self.running:
            raise AssertionError("the database is replaced only while kamailio is stopped")
        db_path = self.server.db_path
        for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
            path.unlink(missing_ok=True)
        _create_database(db_path)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> PresenceServer:
        """Start Kamailio and wait until it answers OPTIONS over UDP and
        listens on its TCP port; on failure, stop it and fail the test."""
        if self.proc is not None:
            raise AssertionError("kamailio is started twice without a stop")
        server = self.server
        with server.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-DD", "-E", *self._args(), "-P", str(self.workdir / "kamailio.pid")],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        try:
            self._wait_ready(self.proc, timeout)
        except BaseException:
            self.stop()
            raise
        return server

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        server = self.server
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"kamailio exited with {proc.returncode} during start-up:\n{server.log_tail()}",
                    pytrace=False,
                )
            status = _options_probe(self.udp_port, 0.2)
            if status is not None and status.startswith("SIP/2.0 200"):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"kamailio did not answer OPTIONS on udp port {self.udp_port} within "
                    f"{timeout} s (last reply: {status!r}):\n{server.log_tail()}",
                    pytrace=False,
                )
        if not any(socket_bound(pid, self.tcp_port, "tcp") for pid in _group_members(proc.pid)):
            pytest.fail(f"kamailio does not listen on tcp port {self.tcp_port}", pytrace=False)

    def stop(self) -> None:
        """Stop Kamailio and every process it started (a no-op when it is
        not running)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop_kamailio(proc)

    def restart(self, *, empty_db: bool = True) -> PresenceServer:
        """Stop, optionally replace the database with an empty one, and
        start again on the same ports."""
        self.stop()
        if empty_db:
            self.create_database()
        return self.start()


@pytest.fixture(scope="session")
def presence_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PresenceServer]:
    """tests/peers/kamailio/presence-server.cfg on free UDP and TCP ports of
    127.0.0.1, with its SQLite database in a temporary work dir; stopped at
    the end of the session."""
    kamailio = KamailioPresence(tmp_path_factory.mktemp("presence-server"))
    kamailio.create_database()
    kamailio.check_config()
    try:
        yield kamailio.start()
    finally:
        kamailio.stop()


class RestartablePresenceServer:
    """A presence server of one test's own, which the test may restart
    (a server that loses its state, as after a crash)."""

    def __init__(self, kamailio: KamailioPresence) -> None:
        self.kamailio = kamailio
        self.server = kamailio.server

    def address(self, transport: Transport) -> Address:
        return self.server.address(transport)

    def presentities(self, username: str) -> list[dict[str, Any]]:
        return self.server.presentities(username)

    def log_tail(self, lines: int = 40) -> str:
        return self.server.log_tail(lines)

    @property
    def starts(self) -> int:
        return self.kamailio.starts

    async def restart(self, *, empty_db: bool = True) -> None:
        """Stop Kamailio, give it a new empty database if ``empty_db``,
        start it again on the same ports and wait until it answers.  The
        blocking work runs in a thread: the event loop (and pua's timers
        and retransmissions on it) keeps running meanwhile."""
        await asyncio.to_thread(self.kamailio.restart, empty_db=empty_db)


@pytest.fixture
def restartable_presence_server(tmp_path: Path) -> Iterator[RestartablePresenceServer]:
    """A presence server for this test alone (free ports, its own
    database), which the test can ``await restart(empty_db=True)``;
    stopped at the end of the test."""
    kamailio = KamailioPresence(tmp_path / "presence-server")
    kamailio.create_database()
    try:
        kamailio.start()
        yield RestartablePresenceServer(kamailio)
    finally:
        kamailio.stop()


def _group_members(pgid: int) -> list[int]:
    """The pids in process group ``pgid`` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the fields after the command name, which is in parentheses
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members
