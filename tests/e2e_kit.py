"""Two real gateway nodes on loopback, as subprocesses, for the end-to-end tests.

    a, b = make_pair(Path(tmp))                # configs written, `gateway init` run for both
    self.addCleanup(a.stop); a.start()         # `gateway run -c …` in a subprocess
    client = office_client(a)                  # zeep, driven only by the served WSDL
    client.service.SendDocument(Envelope=envelope(H23, [H40], "7"))
    cli_json(a, "queue")                       # any read command, with --json, parsed

Node A hosts 000.00.00.H23 (office credential "a"), node B hosts 000.00.00.H40 (office "b"); each
has a local route for its own agency and a soap route to the other's exchange face, over mutual
TLS with certificates from one shared dev CA (B's `init` uses A's CA directory). The retry
schedule is short (1s, 1s, 2s) so that a peer coming back is noticed within seconds.

Everything here blocks (subprocess, zeep): tests use SynchronousTestCase and bounded polling.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import attrs
import requests
import zeep
from zeep.transports import Transport as ZeepTransport

from twisted.trial.unittest import SynchronousTestCase

from edxml import reader, writer
from edxml.codes import Priority
from edxml.model import Envelope, Organization

T = TypeVar("T")

H23 = "000.00.00.H23"  # UBND tỉnh Hà Nam, hosted on node A
H40 = "000.00.00.H40"  # UBND tỉnh Hưng Yên, hosted on node B
NAMES = {H23: "Ủy ban nhân dân tỉnh Hà Nam", H40: "Ủy ban nhân dân tỉnh Hưng Yên"}
SAMPLE = Path(__file__).resolve().parent / "fixtures" / "sample_envelope.edxml"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port nothing listens on now (bound to 0 and released; the node binds it again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class Node:
    """One node's directory, ports and (while it runs) its process."""

    name: str
    directory: Path
    organ_id: str
    office: str  # the office credential's name
    office_port: int
    exchange_port: int
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0
    crls: tuple[str, ...] = ()  # [trust] crls, relative to the node's directory

    @property
    def conf(self) -> Path:
        return self.directory / "gateway.conf"

    @property
    def office_url(self) -> str:
        return f"http://127.0.0.1:{self.office_port}/office"

    @property
    def exchange_url(self) -> str:
        return f"https://127.0.0.1:{self.exchange_port}/exchange"

    @property
    def token(self) -> str:
        return (self.directory / "data" / "office.token").read_text().strip()

    @property
    def db_path(self) -> Path:
        return self.directory / "data" / "gateway.db"

    @property
    def stderr_path(self) -> Path:
        return self.directory / f"run-{self.runs}.stderr"

    def node_section(self, extra: str = "") -> str:
        """[node] on loopback, with the dev PKI `gateway init` writes; `extra` keys appended."""
        return f"""
[node]
name = Node {self.name}
data_dir = data
office_listen = tcp:{self.office_port}:interface=127.0.0.1
office_url = {self.office_url}
exchange_listen = tcp:{self.exchange_port}:interface=127.0.0.1
exchange_url = {self.exchange_url}
tls_cert = data/pki/node.pem
tls_key = data/pki/node.key
tls_ca = data/pki/root.pem
{extra}"""

    def config_text(self, peer: Node) -> str:
        return (
            self.node_section()
            + agency_sections(self)
            + f"""
[route:peer]
transport = soap
url = {peer.exchange_url}
organ_ids = {peer.organ_id}
max_concurrency = 4
timeout = 10s
"""
            + common_sections(max_attempts=20, crls=self.crls)
        )

    def start(self) -> None:
        """`gateway run` in a subprocess; returns once the office port accepts connections."""
        assert self.process is None, "already running"
        self.runs += 1
        with self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "-c", str(self.conf)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise AssertionError(f"node {self.name} exited with {code}:\n{self.stderr()}")
            try:
                socket.create_connection(("127.0.0.1", self.office_port), timeout=1).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"node {self.name} not listening after {START_TIMEOUT}s:\n{self.stderr()}"
                )
            time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if it hangs. The exit code, or None if it was not running."""
        process, self.process = self.process, None
        return stop_process(process)

    def kill(self) -> None:
        """SIGKILL: no drain, no checkpoint, exactly like a power cut for the process."""
        process, self.process = self.process, None
        assert process is not None, "not running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-8000:]
        except OSError:
            return "(no stderr)"


def agency_sections(node: Node) -> str:
    """[agency:…] for the node's own agency, its office credential and its local route."""
    return f"""
[agency:{node.organ_id}]
name = {NAMES[node.organ_id]}
signing_key = data/pki/{node.organ_id}.key
signing_cert = data/pki/{node.organ_id}.pem

[office:{node.office}]
token_file = data/office.token
organ_ids = {node.organ_id}

[route:local]
transport = local
organ_ids = {node.organ_id}
"""


def common_sections(*, max_attempts: int, crls: Sequence[str] = ()) -> str:
    """[trust] (the shared dev root, `crls` if any), [limits] off and a short [retry]."""
    crls_line = f"\ncrls = {', '.join(crls)}" if crls else ""
    return f"""
[trust]
roots = data/pki/root.pem{crls_line}

[limits]
office_rate = 0
exchange_rate = 0

[retry]
schedule = 1s, 1s, 2s
jitter = 0.1
max_attempts = {max_attempts}
"""


def stop_process(process: subprocess.Popen[bytes] | None) -> int | None:
    """SIGTERM, wait, SIGKILL if it hangs. The exit code, or None if there was no process."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def rows(node: Node, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """A read on the node's live store, through the product's own read-only handle."""
    from gateway.store import Store

    conn = Store.open_readonly(node.db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def drained(sender: Node, recipient: str) -> bool:
    """Nothing of the sender's to `recipient` left queued, sending or waiting to retry."""
    (left,) = rows(
        sender,
        "SELECT count(*) FROM deliveries WHERE recipient = ? AND state IN"
        " ('queued', 'sending', 'retry_wait')",
        recipient,
    )[0]
    return bool(left == 0)


def history_at(
    office: Any, message_id: str, recipient: str, count: int, timeout: float
) -> list[str]:
    """The status codes the sender's GetSendStatus shows for `recipient`, once there are
    `count` of them."""

    def codes() -> list[str] | None:
        status = office.service.GetSendStatus(MessageId=message_id)
        found_for = {r.OrganId: r for r in status.Recipient}[recipient]
        found = [s.Code for s in found_for.History.Status] if found_for.History else []
        return found if len(found) >= count else None

    return poll(f"{count} statuses from {recipient}", codes, timeout=timeout)


def make_pair(base: Path, *, b_crls: Sequence[str] = ()) -> tuple[Node, Node]:
    """Node A (H23) and node B (H40) under `base`, configured for each other and initialised.
    `b_crls`: CRL files B's [trust] names once initialised (init wants them to exist); the
    caller writes them before B starts."""
    base = base.resolve()
    a = Node("A", base / "a", H23, "a", free_port(), free_port())
    b = Node("B", base / "b", H40, "b", free_port(), free_port())
    for node, peer in ((a, b), (b, a)):
        node.directory.mkdir(parents=True, exist_ok=True)
        node.conf.write_text(node.config_text(peer), encoding="utf-8")
    init_with_one_ca(a, b)
    if b_crls:
        b.crls = tuple(b_crls)
        b.conf.write_text(b.config_text(a), encoding="utf-8")
    return a, b


def init_with_one_ca(first: Node, *others: Node) -> None:
    """`gateway init` for every node, the others with the first one's CA directory."""
    made = gateway(first, "init", "--json")
    for node in others:
        gateway(node, "init", "--ca-dir", made["ca_dir"], "--json")


def gateway(node: Node, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
    """Run `gateway ARGS -c CONF` (args must include --json) and return its parsed stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "-c", str(node.conf)],
        cwd=node.directory,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode not in ok:
        raise AssertionError(
            f"gateway {' '.join(args)} on {node.name} exited {proc.returncode}:\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return json.loads(proc.stdout)


def cli_json(node: Node, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
    """A read command (`status`, `queue`, `show ID`, `audit verify`) with --json, parsed."""
    return gateway(node, *args, "--json", ok=ok)


def office_client(node: Node) -> zeep.Client:
    """zeep on the node's served WSDL, authenticated with the node's office token.

    trust_env is off: this machine sets REQUESTS_CA_BUNDLE and proxies that must not apply to
    loopback. The caller closes `client.transport.session`.
    """
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {node.token}"
    transport = ZeepTransport(session=session, timeout=30, operation_timeout=60)
    return zeep.Client(node.office_url + "?wsdl", transport=transport)


def _sample() -> Envelope:
    doc = reader.read(SAMPLE.read_bytes()).document
    assert isinstance(doc, Envelope)
    return doc


_SAMPLE: list[Envelope] = []


def envelope(
    sender: str, recipients: Sequence[str], number: str, priority: Priority = Priority.NORMAL
) -> bytes:
    """The fixture's Công văn from `sender` to `recipients`, numbered `number` (the DocumentId
    follows), unsigned: the sender's node signs it."""
    if not _SAMPLE:
        _SAMPLE.append(_sample())
    doc = _SAMPLE[0]
    header = doc.header
    code = attrs.evolve(header.code, code_number=number)
    day = header.promulgation_info.promulgation_date
    assert day is not None
    header = attrs.evolve(
        header,
        from_=attrs.evolve(header.from_, organ_id=sender, organ_name=NAMES.get(sender, sender)),
        to=tuple(
            Organization(
                organ_id=o,
                organization_in_charge=NAMES.get(o, o),
                organ_name=NAMES.get(o, o),
            )
            for o in recipients
        ),
        code=code,
        document_id=document_id(sender, number),
        other_info=attrs.evolve(header.other_info, priority=priority),
    )
    return writer.write(attrs.evolve(doc, header=header))


def document_id(sender: str, number: str) -> str:
    """The DocumentId `envelope(sender, …, number)` carries."""
    doc = _SAMPLE[0] if _SAMPLE else _sample()
    day = doc.header.promulgation_info.promulgation_date
    assert day is not None
    code = attrs.evolve(doc.header.code, code_number=number)
    return f"{sender},{day:%Y/%m/%d},{code}"


def poll(what: str, probe: Callable[[], T | None], *, timeout: float, every: float = 0.2) -> T:
    """`probe()` until it returns something other than None (or falsy), within `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(every)


@attrs.define
class SimulatorProcess:
    """`gateway simulate …` in a subprocess, and its control face (<root>/_sim/). Subclasses
    give `simulate_args()`, the arguments after `simulate` (writing the files they name)."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""  # the service endpoint, as the nodes' routes name it

    what: ClassVar[str] = "simulator"  # for failure messages

    def simulate_args(self) -> list[str]:
        raise NotImplementedError

    @property
    def root(self) -> str:
        """scheme://host:port: the control face lives at <root>/_sim/."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def stderr_path(self) -> Path:
        return self.directory / "sim.stderr"

    def start(self) -> None:
        """Runs it and reads the `{"listening": URL}` line it prints once it listens."""
        args = self.simulate_args()
        with self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "simulate", *args],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise AssertionError(f"{self.what} did not start:\n{self.stderr()}")
        self.url = json.loads(line)["listening"]

    def stop(self) -> int | None:
        process, self.process = self.process, None
        return stop_process(process)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-8000:]
        except OSError:
            return "(no stderr)"

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # this machine's proxies must not apply to loopback
        return session

    def state(self) -> Any:
        with self._session() as s:
            answer = s.get(f"{self.root}/_sim/state", timeout=10)
            answer.raise_for_status()
            return answer.json()

    def faults(self, **faults: Any) -> Any:
        with self._session() as s:
            answer = s.post(f"{self.root}/_sim/faults", json=faults, timeout=10)
            answer.raise_for_status()
            return answer.json()


class WorldTestCase(SynchronousTestCase):
    """Tests sharing one world of processes (nodes `a` and `b`, started once for the class).

    Subclasses set `world_factory = staticmethod(make_world)`, `prefix` (of the temporary
    directory) and `timeout`. Set E2E_KEEP to look at the directories afterwards. A failing test
    carries the processes' logs when the world has `logs()`."""

    prefix: ClassVar[str] = "e2e-"
    timeout: ClassVar[float] = 60.0
    world: ClassVar[Any]
    base: ClassVar[Path]

    @staticmethod
    def world_factory(base: Path) -> Any:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.base = Path(tempfile.mkdtemp(prefix=cls.prefix))
        cls.world = cls.world_factory(cls.base)
        try:
            cls.world.start()
        except BaseException:
            cls.world.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.world.stop()
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self) -> None:
        logs = getattr(self.world, "logs", None)
        if logs is None:
            return
        # trial fetches the method after setUp, so the wrapper is what runs.
        method: Callable[[], None] = getattr(self, self._testMethodName)

        def with_logs() -> None:
            try:
                method()
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n\n{logs()}") from exc

        setattr(self, self._testMethodName, with_logs)

    def client(self, node: Node) -> Any:
        client = office_client(node)
        self.addCleanup(client.transport.session.close)
        return client

    def history_at_a(self, office_a: Any, message_id: str, count: int) -> list[str]:
        return history_at(office_a, message_id, H40, count, self.timeout)

    def in_b_inbox(self, office_b: Any, number: str) -> list[Any]:
        """B's inbox items (for H40) of A's document numbered `number`."""
        wanted = document_id(H23, number)
        return [
            d
            for d in office_b.service.ReceiveDocuments(OrganId=H40, Max=50)
            if d.DocumentId == wanted
        ]

    def arrival_at_b(self, office_b: Any, number: str) -> Any:
        """The document in B's inbox (polled), which must list it exactly once."""
        found = poll(
            f"document {number} in B's inbox",
            lambda: self.in_b_inbox(office_b, number),
            timeout=self.timeout,
        )
        self.assertEqual(len(found), 1, found)
        return found[0]
