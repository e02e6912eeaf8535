"""End-to-end throughput, latency and peak memory of a running node against the edxml floor.

A node runs as a real subprocess (`python -m gateway.cli run -c CONF`) on loopback with its own
dev PKI. This process plays a peer node: it calls `Deliver` on the exchange face over mutual TLS
(asyncio streams, HTTP/1.1 keep-alive) with signed envelopes, each with its own DocumentId, from
a remote agency to a hosted one. An accepted envelope is one whose `DeliverResponse` receipt came
back, which the node sends only after the durable commit. Measured:

- the maximum sustainable rate: a closed loop of N concurrent clients, each sending its next
  envelope as soon as the previous receipt arrives;
- the p50/p99 latency at a fixed offered load (open loop: requests leave on a fixed schedule and
  latency counts from the scheduled time, so a stalled node cannot hide its queue);
- the peak memory of a fresh node receiving one 100 MB envelope (VmHWM of the node process, reset
  through /proc/PID/clear_refs just before the envelope when the kernel allows it).

Rates and latencies are reported as ratios to the floor, measured in this process on the same
bytes: `edxml.check.examine(bytes, trust=...)` (parse + schema + rules + signature verification)
plus what a minimal durable store does, one blob file write + fsync and one row insert into
SQLite in WAL mode with synchronous=FULL. The floor runs serially; its rate is 1 / mean time.

    python bench/node_bench.py [--quick] [--json] [--size 100k] [--clients 4] [--rate R]
                               [--duration S] [--big 100m] [--profile]

`--profile` runs the node under cProfile (every thread) and prints where its time went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import hashlib
import json
import os
import pstats
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from edxml_bench import build_envelope

from edxml import signature, writer
from edxml.check import examine
from edxml.model import Envelope, Organization, TraceHeader
from edxml.xmlsafe import Limits
from gateway import devpki
from gateway.soap import Face, SoapVersion
from gateway.transports import deliver_request, parse_deliver_answer

SENDER = "000.00.00.G22"  # Văn phòng Chính phủ: a remote agency behind route `vpcp`
HOSTED = "000.00.00.H23"  # UBND tỉnh Hà Nam: hosted by the node under test
AGENCIES = {SENDER: "Văn phòng Chính phủ", HOSTED: "Ủy ban nhân dân tỉnh Hà Nam"}
SIZES = {"10k": 10 * 1024, "100k": 100 * 1024, "1m": 1 << 20, "20m": 20 << 20, "100m": 100 << 20}
BIG_LIMITS = Limits(max_bytes=400 << 20)
ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- material


@attrs.frozen
class Material:
    directory: Path
    pki: devpki.DevPKI

    @classmethod
    def create(cls, directory: Path) -> Material:
        pki = devpki.generate(node_name="Nút đo hiệu năng", agencies=AGENCIES)
        return cls(directory, pki.write(directory / "pki"))

    def trust(self) -> signature.Trust:
        return signature.Trust.from_pem(self.pki.root.cert_pem, self.pki.issuing.cert_pem)

    def client_context(self) -> ssl.SSLContext:
        """The peer's side of mutual TLS: the node certificate (clientAuth) and our root only."""
        node = self.pki.node
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cadata=self.pki.root.cert_pem.decode()
        )
        assert node.chain_path is not None and node.key_path is not None
        ctx.load_cert_chain(node.chain_path, node.key_path)
        return ctx


def readdressed(template: Envelope, number: int) -> Envelope:
    """The template from SENDER to HOSTED with its own code number, so its own DocumentId."""
    h = template.header
    code = attrs.evolve(h.code, code_number=str(number))
    day = h.promulgation_info.promulgation_date
    assert day is not None
    header = attrs.evolve(
        h,
        from_=Organization(organ_id=SENDER, organ_name=AGENCIES[SENDER]),
        to=(Organization(organ_id=HOSTED, organ_name=AGENCIES[HOSTED]),),
        code=code,
        document_id=f"{SENDER},{day:%Y/%m/%d},{code}",
    )
    traces = tuple(
        TraceHeader(organ_id=SENDER, timestamp=t.timestamp) for t in template.trace.traces
    )
    trace = attrs.evolve(template.trace, traces=traces)
    return attrs.evolve(template, header=header, trace=trace)


def signed_envelopes(material: Material, size: int, first: int, count: int) -> list[bytes]:
    template = build_envelope(size)
    seal = material.pki.agencies[SENDER]
    limits = BIG_LIMITS if size > 50 << 20 else Limits()
    return [
        signature.sign(writer.write(readdressed(template, n)), seal.key, seal.chain, limits=limits)
        for n in range(first, first + count)
    ]


# ----------------------------------------------------------------------------- the floor


def floor_samples(
    envelopes: Sequence[bytes], trust: signature.Trust, directory: Path
) -> list[float]:
    """Seconds per envelope for examine + blob write/fsync + one WAL synchronous=FULL insert."""
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / "floor.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, sender TEXT, document_id TEXT,"
        " blob_sha256 TEXT, size INTEGER, verdict TEXT, arrived_at TEXT)"
    )
    limits = Limits(max_bytes=max(Limits().max_bytes, max(len(e) for e in envelopes) + 1))
    samples = []
    for data in envelopes:
        start = time.perf_counter()
        report = examine(data, trust=trust, limits=limits)
        doc = report.document
        if not report.acceptable or not isinstance(doc, Envelope):
            raise RuntimeError(f"floor: envelope not acceptable: {report.to_json()}")
        digest = hashlib.sha256(data).hexdigest()
        fd = os.open(directory / digest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                digest + str(start),
                doc.header.from_.organ_id,
                doc.header.document_id,
                digest,
                len(data),
                "{}",
                dt.datetime.now(dt.UTC).isoformat(),
            ),
        )
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - start)
    conn.close()
    return samples


# ----------------------------------------------------------------------------- the node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def config_text(material: Material, *, exchange: int, office: int, max_envelope: str) -> str:
    pki = material.pki
    agency = pki.agencies[HOSTED]
    # Status 01 goes back to the sender's node; nobody listens there, and a long retry schedule
    # keeps the dispatcher's retries out of the measurement after the first, refused attempt.
    return f"""
[node]
name = Nút đo hiệu năng
data_dir = data
office_listen = tcp:{office}:interface=127.0.0.1
office_url = http://127.0.0.1:{office}/office
exchange_listen = tcp:{exchange}:interface=127.0.0.1
exchange_url = https://127.0.0.1:{exchange}/exchange
tls_cert = {pki.node.chain_path}
tls_key = {pki.node.key_path}
tls_ca = {pki.root.cert_path}

[agency:{HOSTED}]
name = {AGENCIES[HOSTED]}
signing_key = {agency.key_path}
signing_cert = {agency.chain_path}

[office:dev]
token_file = office.token
organ_ids = {HOSTED}

[route:local]
transport = local

[route:vpcp]
transport = soap
url = https://127.0.0.1:{free_port()}/exchange
organ_ids = {SENDER}
require_envelope_signature = required

[trust]
roots = {pki.root.cert_path}
intermediates = {pki.issuing.cert_path}

[limits]
max_envelope_bytes = {max_envelope}

[retry]
schedule = 1h
"""


class NodeProcess:
    """`gateway run` in its own directory, on free loopback ports; logs to node.log."""

    def __init__(self, material: Material, name: str, *, max_envelope: str, profile: bool) -> None:
        self.directory = material.directory / name
        (self.directory / "data").mkdir(parents=True)
        (self.directory / "office.token").write_text("bench-office-token-0123456789abcdef")
        self.port = free_port()
        conf = self.directory / "gateway.conf"
        conf.write_text(
            config_text(material, exchange=self.port, office=free_port(), max_envelope=max_envelope)
        )
        self.profile_path = self.directory / "node.prof" if profile else None
        if self.profile_path is None:
            command = [sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)]
        else:
            command = [
                sys.executable,
                __file__,
                "--profiled-node",
                str(conf),
                str(self.profile_path),
            ]
        self.log_path = self.directory / "node.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command, cwd=self.directory, stdout=self._log, stderr=subprocess.STDOUT, env=_env()
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"node not listening after {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"{field} not in /proc/{self.proc.pid}/status")

    def reset_peak(self) -> bool:
        """Reset the node's VmHWM to its current RSS (Linux clear_refs), if allowed."""
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self, grace: float) -> tuple[int, float]:
        """SIGTERM, then SIGKILL after `grace` s (the store survives a kill); the exit code
        (negative: killed) and how long the clean stop took or was given."""
        started = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode, time.perf_counter() - started

    def errors_logged(self) -> int:
        count = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            level = event.get("log_level", {})
            if isinstance(level, dict) and level.get("name") in {"error", "critical"}:
                count += 1
        return count

    def accepted_in_store(self) -> int:
        """Inbound envelopes the node holds (read after it stopped): the receipts' proof."""
        db = self.directory / "data" / "gateway.db"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'envelope'"
                " AND state <> 'rejected'"
            ).fetchone()
            return int(row[0])
        finally:
            conn.close()


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


def profiled_node(conf: str, out: str) -> None:
    """`gateway run` with a cProfile per thread (the edxml work runs in the node's pool)."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    from gateway.cli import main as cli_main

    main_prof = cProfile.Profile()
    main_prof.enable()
    try:
        cli_main(["run", "-c", conf], standalone_mode=False)
    finally:
        main_prof.disable()
        with lock:
            stats = pstats.Stats(main_prof)
            for prof in profiles:
                # A thread whose profile never collected anything cannot be added.
                with contextlib.suppress(TypeError):
                    stats.add(prof)
        stats.dump_stats(out)


def profile_summary(path: Path, top: int = 25) -> list[dict[str, Any]]:
    stats: Any = pstats.Stats(str(path))
    rows = []
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({func})",
                "calls": calls,
                "tottime": tottime,
                "cumtime": cumtime,
            }
        )
    # Idle threads waiting for work and the reactor waiting for I/O are not where time goes.
    idle = ("_thread.lock", "SimpleQueue", "select.epoll")
    rows = [r for r in rows if not any(word in r["function"] for word in idle)]
    rows.sort(key=lambda r: r["tottime"], reverse=True)
    return rows[:top]


# ----------------------------------------------------------------------------- the client


class Connection:
    """One keep-alive HTTPS connection to the exchange face, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader = reader
        self.writer = writer
        self.port = port

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1", limit=1 << 20
        )
        return cls(reader, writer, port)

    async def deliver(self, body: bytes) -> tuple[int, bytes, bool]:
        """POST one Deliver request; the status, the body, and whether the connection stays."""
        head = (
            f"POST /exchange HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: {SoapVersion.SOAP11.content_type}\r\n"
            f'SOAPAction: "{Face.EXCHANGE.action("Deliver")}"\r\n'
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        self.writer.write(head)
        self.writer.write(body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        answer = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, answer, headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        self.writer.close()


@attrs.frozen
class Phase:
    sent: int
    accepted: int
    errors: int
    seconds: float
    latencies: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


class Client:
    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.port = port
        self.ctx = ctx
        self.idle: list[Connection] = []
        self.errors: list[str] = []

    async def take(self) -> Connection:
        return self.idle.pop() if self.idle else await Connection.open(self.port, self.ctx)

    async def send(self, body: bytes) -> bool:
        """One envelope; True when its receipt came back (a first receipt, not a duplicate)."""
        conn = await self.take()
        try:
            status, answer, keep = await conn.deliver(body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            conn.close()
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return False
        if keep:
            self.idle.append(conn)
        else:
            conn.close()
        try:
            receipt = parse_deliver_answer(status, answer)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return False
        if receipt.duplicate:
            self.errors.append("answered as a duplicate")
            return False
        return True

    async def warm(self, connections: int) -> None:
        opened = await asyncio.gather(
            *(Connection.open(self.port, self.ctx) for _ in range(connections))
        )
        self.idle.extend(opened)

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def closed_loop(client: Client, bodies: list[bytes], clients: int, duration: float) -> Phase:
    """`clients` senders back to back until `duration` or the bodies run out."""
    queue = iter(bodies)
    latencies: list[float] = []
    outcome = {"sent": 0, "accepted": 0}
    start = time.perf_counter()
    deadline = start + duration
    finished = start

    async def sender() -> None:
        nonlocal finished
        while time.perf_counter() < deadline:
            body = next(queue, None)
            if body is None:
                return
            began = time.perf_counter()
            outcome["sent"] += 1
            if await client.send(body):
                outcome["accepted"] += 1
                latencies.append(time.perf_counter() - began)
            finished = max(finished, time.perf_counter())

    await asyncio.gather(*(sender() for _ in range(clients)))
    return Phase(
        outcome["sent"],
        outcome["accepted"],
        outcome["sent"] - outcome["accepted"],
        finished - start,
        tuple(latencies),
    )


async def open_loop(client: Client, bodies: list[bytes], rate: float, limit: int) -> Phase:
    """Requests leave every 1/rate s whatever the node does (at most `limit` in flight);
    latency runs from the scheduled departure, so queueing in front of the node counts."""
    gate = asyncio.Semaphore(limit)
    latencies: list[float] = []
    accepted = 0
    start = time.perf_counter()

    async def one(body: bytes, due: float) -> None:
        nonlocal accepted
        async with gate:
            ok = await client.send(body)
        if ok:
            accepted += 1
            latencies.append(time.perf_counter() - due)

    tasks = []
    for i, body in enumerate(bodies):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(one(body, due)))
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - start
    return Phase(len(bodies), accepted, len(bodies) - accepted, seconds, tuple(latencies))


# ----------------------------------------------------------------------------- the bench


def quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "mean_s": statistics.fmean(samples) if samples else float("nan"),
        "p50_s": quantile(samples, 0.50),
        "p99_s": quantile(samples, 0.99),
    }


@attrs.frozen
class Settings:
    size: str
    clients: int
    duration: float
    rate: float
    floor_count: int
    big: str
    profile: bool
    stop_grace: float

    @classmethod
    def of(cls, args: argparse.Namespace) -> Settings:
        quick = args.quick
        return cls(
            size=args.size,
            clients=args.clients,
            duration=args.duration or (4.0 if quick else 20.0),
            rate=args.rate,
            floor_count=60 if quick else 200,
            big=args.big or ("20m" if quick else "100m"),
            profile=args.profile,
            stop_grace=args.stop_grace,
        )


def throughput(material: Material, s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    size = SIZES[s.size]
    floor_envs = signed_envelopes(material, size, 1, s.floor_count)
    log(f"floor: {s.floor_count} envelopes of {len(floor_envs[0]):,} bytes")
    floor = floor_samples(floor_envs, material.trust(), material.directory / "floor")
    floor_rate = 1.0 / statistics.fmean(floor)
    del floor_envs
    # The closed loop stops at `duration` or when these run out (then it was simply shorter).
    budget = int(max(floor_rate, 50.0) * 1.6 * s.duration)
    log(f"signing {budget} envelopes for the closed loop")
    bodies = [deliver_request(e) for e in signed_envelopes(material, size, 100_000, budget + 10)]

    node = NodeProcess(material, "node", max_envelope="150MB", profile=s.profile)
    client = Client(node.port, material.client_context())
    result: dict[str, Any] = {"envelope_bytes": size, "floor": summary(floor)}
    result["floor"]["rate_per_s"] = floor_rate
    try:
        loop = asyncio.new_event_loop()
        try:
            warm, bodies = bodies[:10], bodies[10:]
            loop.run_until_complete(client.warm(max(s.clients, 4)))
            loop.run_until_complete(closed_loop(client, warm, 2, 60.0))
            log(f"closed loop: {s.clients} clients, {s.duration:g}s")
            top = loop.run_until_complete(closed_loop(client, bodies, s.clients, s.duration))
            if top.sent == len(bodies):
                log(f"closed loop ran out of envelopes after {top.seconds:.1f}s")
            del bodies
            rate = s.rate or max(1.0, round(top.rate * 0.5, 1))
            wanted = max(1, int(rate * s.duration))
            # Signed while the node idles, so the signing does not compete with it.
            log(f"signing {wanted} envelopes for the fixed load")
            fixed_bodies = [
                deliver_request(e) for e in signed_envelopes(material, size, 500_000, wanted)
            ]
            log(f"fixed load: {rate:g}/s for {wanted / rate:.1f}s")
            fixed = loop.run_until_complete(open_loop(client, fixed_bodies, rate, 256))
            client.close()
        finally:
            loop.close()
    finally:
        # The profile is written only by a clean stop: give it time.
        rc, stop_seconds = node.stop(120.0 if s.profile else s.stop_grace)
        log(f"node exit {rc} after {stop_seconds:.1f}s")
    stored = node.accepted_in_store()
    expected = 10 + top.accepted + fixed.accepted
    result["closed_loop"] = _phase(top, floor, floor_rate) | {"clients": s.clients}
    result["fixed_load"] = _phase(fixed, floor, floor_rate) | {"offered_per_s": rate}
    result["node"] = {
        "exit_code": rc,
        "stop_seconds": stop_seconds,
        "errors_logged": node.errors_logged(),
        "stored_envelopes": stored,
        "receipts_returned": expected,
        "client_errors": sorted(set(client.errors))[:5],
    }
    if node.profile_path is not None:
        result["profile"] = profile_summary(node.profile_path)
    return result


def _phase(phase: Phase, floor: Sequence[float], floor_rate: float) -> dict[str, Any]:
    lat = summary(phase.latencies)
    fl = summary(floor)
    return {
        "sent": phase.sent,
        "accepted": phase.accepted,
        "errors": phase.errors,
        "seconds": phase.seconds,
        "rate_per_s": phase.rate,
        "rate_x_floor": phase.rate / floor_rate,
        **lat,
        "p50_x_floor": lat["p50_s"] / fl["p50_s"],
        "p99_x_floor": lat["p99_s"] / fl["p99_s"],
    }


def memory(material: Material, s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    size = SIZES[s.big]
    log(f"memory: building and signing a {s.big} envelope")
    small = [deliver_request(e) for e in signed_envelopes(material, SIZES["10k"], 900_000, 3)]
    (big,) = signed_envelopes(material, size, 910_000, 1)
    body = deliver_request(big)
    node = NodeProcess(material, "node-big", max_envelope="200MB", profile=False)
    client = Client(node.port, material.client_context())
    try:
        loop = asyncio.new_event_loop()
        try:
            # Warm: schemas, keys, the store's first transactions; not what the envelope costs.
            loop.run_until_complete(closed_loop(client, small, 1, 60.0))
            before_rss = node.status_kb("VmRSS")
            before_hwm = node.status_kb("VmHWM")
            reset = node.reset_peak()
            base = node.status_kb("VmRSS") if reset else before_hwm
            log(f"memory: sending {len(big):,} bytes ({len(body):,} on the wire)")
            started = time.perf_counter()
            ok = loop.run_until_complete(client.send(body))
            seconds = time.perf_counter() - started
            peak = node.status_kb("VmHWM")
            client.close()
        finally:
            loop.close()
    finally:
        rc, _ = node.stop(s.stop_grace)
    growth = (peak - base) * 1024
    return {
        "envelope_bytes": len(big),
        "request_bytes": len(body),
        "accepted": ok,
        "seconds": seconds,
        "rss_before_bytes": before_rss * 1024,
        "hwm_before_bytes": before_hwm * 1024,
        "hwm_reset": reset,
        "peak_hwm_bytes": peak * 1024,
        "peak_growth_bytes": growth,
        "peak_growth_x_size": growth / len(big),
        "node_exit_code": rc,
        "client_errors": client.errors[:3],
    }


def print_table(res: dict[str, Any]) -> None:
    t = res["throughput"]
    fl = t["floor"]
    print(
        f"\nenvelope {t['envelope_bytes']:,} bytes, signed; floor = examine + blob fsync + insert"
    )
    print(
        f"{'':<22}{'rate/s':>9}{'x floor':>9}{'p50 ms':>9}{'x floor':>9}{'p99 ms':>9}{'x floor':>9}"
    )
    print(
        f"{'floor (in-process)':<22}{fl['rate_per_s']:>9.1f}{1.0:>9.2f}"
        f"{fl['p50_s'] * 1e3:>9.1f}{1.0:>9.2f}{fl['p99_s'] * 1e3:>9.1f}{1.0:>9.2f}"
    )
    for name, label in (
        ("closed_loop", f"max, {t['closed_loop']['clients']} clients"),
        ("fixed_load", f"fixed {t['fixed_load']['offered_per_s']:g}/s offered"),
    ):
        p = t[name]
        print(
            f"{label:<22}{p['rate_per_s']:>9.1f}{p['rate_x_floor']:>9.2f}"
            f"{p['p50_s'] * 1e3:>9.1f}{p['p50_x_floor']:>9.2f}"
            f"{p['p99_s'] * 1e3:>9.1f}{p['p99_x_floor']:>9.2f}"
        )
    n = t["node"]
    print(
        f"receipts {n['receipts_returned']}, stored {n['stored_envelopes']}, "
        f"errors: client {t['closed_loop']['errors'] + t['fixed_load']['errors']}, "
        f"node log {n['errors_logged']}; node exit {n['exit_code']} "
        f"after {n['stop_seconds']:.1f}s (negative: killed after the grace)"
    )
    if "memory" in res:
        m = res["memory"]
        print(
            f"\npeak memory receiving {m['envelope_bytes'] / 1e6:.0f} MB: node VmHWM growth "
            f"{m['peak_growth_bytes'] / 1e6:.0f} MB = {m['peak_growth_x_size']:.2f}x the envelope "
            f"(peak {m['peak_hwm_bytes'] / 1e6:.0f} MB, reset={m['hwm_reset']}); "
            f"receipt after {m['seconds']:.1f}s, accepted={m['accepted']}"
        )
    if "profile" in t:
        print("\nnode profile, by own time (all threads):")
        for row in t["profile"]:
            print(
                f"{row['tottime']:>8.2f}s {row['cumtime']:>8.2f}s {row['calls']:>9} "
                f"{row['function']}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="a smaller run (< 30 s)")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--size", default="100k", choices=sorted(SIZES), help="envelope size")
    ap.add_argument("--clients", type=int, default=4, help="closed-loop concurrency")
    ap.add_argument("--duration", type=float, default=0.0, help="seconds per load phase")
    ap.add_argument("--rate", type=float, default=0.0, help="fixed load (default: max / 2)")
    ap.add_argument("--big", choices=sorted(SIZES), help="memory envelope (default 100m)")
    ap.add_argument("--no-memory", action="store_true", help="skip the big envelope")
    ap.add_argument("--profile", action="store_true", help="cProfile the node under load")
    ap.add_argument(
        "--stop-grace", type=float, default=5.0, help="seconds for SIGTERM before SIGKILL"
    )
    ap.add_argument("--profiled-node", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.profiled_node:
        profiled_node(*args.profiled_node)
        return
    settings = Settings.of(args)

    started = time.perf_counter()

    def log(text: str) -> None:
        print(
            f"[node_bench {time.perf_counter() - started:5.1f}s] {text}",
            file=sys.stderr,
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="node-bench-") as tmp:
        material = Material.create(Path(tmp))
        results: dict[str, Any] = {"throughput": throughput(material, settings, log)}
        if not args.no_memory:
            results["memory"] = memory(material, settings, log)
    results["bench_seconds"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
        print(f"\nbench took {results['bench_seconds']:.0f}s")


if __name__ == "__main__":
    main()
