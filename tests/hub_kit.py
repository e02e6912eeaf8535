"""Three real processes on loopback for the provincial hub end-to-end tests (issue #8):

    A (agency node, hosts 000.00.00.H23) ──edoc-hub──▶ the BKAV eDoc hub simulator
      (`gateway simulate edoc-hub`) ──edoc-hub pull──▶ B (agency node, hosts 000.00.00.H40)

Both nodes hold an account on the hub (their own OrganId, a token of the real hubs' shape: the
Base64 text of 20 random bytes). A uploads with SendDocument; B's pull loop takes it with
GetPendingDocumentIds → GetDocument → its durable accept → ConfirmReceived, and the hub writes
the automatic status 01 itself. B's 03 and 06 go up with UpdateTraces; A's pull loop reads them
with GetTraces. There is no relay: the hub is the only thing between the nodes.

Every node is `gateway run` in its own subprocess (tests.e2e_kit.Node), the simulator too; the
simulator's control face (<root>/_sim/, the root being the printed URL without its service
path) sets faults and shows what it holds (never a token).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs

try:
    from tests.e2e_kit import (
        H23,
        H40,
        NAMES,
        Node,
        SimulatorProcess,
        agency_sections,
        common_sections,
        free_port,
        init_with_one_ca,
    )
except ImportError:  # tests/ itself on sys.path (no package __init__)
    from e2e_kit import (  # type: ignore[no-redef, import-not-found]
        H23,
        H40,
        NAMES,
        Node,
        SimulatorProcess,
        agency_sections,
        common_sections,
        free_port,
        init_with_one_ca,
    )

ROUTE = "hub"
PULL_EVERY = "500ms"
SERVICE_PATH = "/services/EdocService"

_COMMON = common_sections(max_attempts=40)


def hub_token() -> str:
    """A token shaped like the hub's: Base64 of 20 random bytes (28 characters)."""
    return base64.b64encode(secrets.token_bytes(20)).decode("ascii")


def _hub_route(url: str, organ_id: str, token_file: Path, serves: str, sync: str) -> str:
    return f"""
[route:{ROUTE}]
transport = edoc-hub
url = {url}
organ_id = {organ_id}
token_file = {token_file}
organ_ids = {serves}
pull_interval = {PULL_EVERY}
timeout = 5s
directory_sync = {sync}
"""


@attrs.define
class HubSimulator(SimulatorProcess):
    """`gateway simulate edoc-hub` in a subprocess, and its control face (any path serves
    SOAP)."""

    tokens: dict[str, str] = attrs.field(factory=dict)  # OrganId → token

    what: ClassVar[str] = "hub simulator"

    def token_file(self, organ_id: str) -> Path:
        return self.directory / f"{organ_id}.token"

    def write_organizations(self) -> Path:
        """Both accounts, their tokens in files beside the organisations file (mode 0600)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for organ_id in (H23, H40):
            token = self.tokens.setdefault(organ_id, hub_token())
            path = self.token_file(organ_id)
            path.write_text(token + "\n", encoding="ascii")
            path.chmod(0o600)
            entries.append(
                {
                    "organ_id": organ_id,
                    "token_file": path.name,
                    "name": NAMES[organ_id],
                    "in_charge": NAMES[organ_id],
                    "address": "Việt Nam",
                    "email": f"vanthu.{organ_id[-3:].lower()}@example.invalid",
                    "telephone": "0226 0000000",
                }
            )
        path = self.directory / "organizations.json"
        path.write_text(json.dumps({"organizations": entries}, ensure_ascii=False), "utf-8")
        return path

    def simulate_args(self) -> list[str]:
        return [
            "edoc-hub",
            "--listen",
            "127.0.0.1:0",
            "--organizations",
            str(self.write_organizations()),
            "--path",
            SERVICE_PATH,
        ]

    def clear_faults(self) -> Any:
        return self.faults(slow=0, http500=0, not_ready=0, lost_confirms=0)

    def document(self, document_id: str) -> Any:
        """The hub's record of the document with that edXML DocumentId, or None."""
        found = [d for d in self.state()["documents"] if d["document_id"] == document_id]
        assert len(found) <= 1, found
        return found[0] if found else None


@attrs.define
class HubWorld:
    a: Node
    b: Node
    sim: HubSimulator

    @property
    def nodes(self) -> tuple[Node, Node]:
        return (self.a, self.b)

    def start(self) -> None:
        self.sim.start()
        for node in self.nodes:
            self.configure(node)
            node.start()

    def configure(self, node: Node) -> None:
        node.conf.write_text(self.config_text(node), encoding="utf-8")

    def peer_of(self, node: Node) -> Node:
        return self.b if node is self.a else self.a

    def config_text(self, node: Node) -> str:
        # B takes the hub's directory at start (GetOrganizations); A does not.
        sync = "1h" if node is self.b else "off"
        route = _hub_route(
            self.sim.url,
            node.organ_id,
            self.sim.token_file(node.organ_id),
            self.peer_of(node).organ_id,
            sync,
        )
        return node.node_section() + agency_sections(node) + route + _COMMON

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.sim.stop()

    def logs(self, lines: int = 40) -> str:
        """The last `lines` log events of every process, as text, for a failure message."""
        parts = []
        for node in self.nodes:
            text = readable_log(node.stderr_path, lines)
            parts.append(f"--- node {node.name} (run {node.runs}) ---\n{text}")
        text = readable_log(self.sim.stderr_path, lines)
        parts.append(f"--- hub simulator ---\n{text}")
        return "\n".join(parts)

    def token_leaks(self) -> list[str]:
        """Files that hold either hub token's bytes: every stderr log of both nodes (all runs)
        and of the simulator, and every blob both nodes stored."""
        tokens = [t.encode("ascii") for t in self.sim.tokens.values()]
        leaks: list[str] = []
        for path in self.searched_files():
            data = path.read_bytes()
            leaks.extend(f"{path}" for t in tokens if t in data)
        return leaks

    def searched_files(self) -> Iterator[Path]:
        for node in self.nodes:
            yield from sorted(node.directory.glob("run-*.stderr"))
            blobs = node.directory / "data" / "blobs"
            yield from sorted(p for p in blobs.rglob("*") if p.is_file())
        yield self.sim.stderr_path


_QUIET = ("twisted.web.client._HTTP11ClientFactory", "twisted.python.log")


def readable_log(path: Path, lines: int) -> str:
    """A process' JSON log lines (one event each) as text, without the HTTP client's factory
    chatter and the access log, repeats folded: every warning and error, and the last `lines`
    events whatever they are. Lines that are not JSON are kept as they are."""
    from twisted.logger import eventFromJSON, formatEvent

    try:
        raw = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    out: list[tuple[str, str, int]] = []  # (time, text, repeats)
    for line in raw:
        try:
            event = eventFromJSON(line)
        except ValueError:
            out.append(("", line, 1))
            continue
        if event.get("log_namespace") in _QUIET:
            continue
        level = getattr(event.get("log_level"), "name", "")
        text = f"{level} {event.get('log_namespace')}: {formatEvent(event)}"
        if event.get("log_failure") is not None:
            text += "\n" + event["log_failure"].getTraceback()
        if out and out[-1][1] == text:  # the office polled, the loop found nothing: once
            out[-1] = (out[-1][0], text, out[-1][2] + 1)
        else:
            out.append((f"{event.get('log_time', 0):.3f}", text, 1))
    kept = [
        (at, text, n)
        for i, (at, text, n) in enumerate(out)
        if i >= len(out) - lines or text.startswith(("warn", "error", "critical"))
    ]
    return "\n".join(f"{at} {text}" + (f" (×{n})" if n > 1 else "") for at, text, n in kept)


def make_world(base: Path) -> HubWorld:
    """Directories, configurations, hub accounts and dev PKI (one CA for both nodes) for the
    three processes; nothing runs yet. The simulator's URL is not known before it starts, so
    the configurations written here carry a placeholder that `start` replaces."""
    base = base.resolve()
    a = Node("A", base / "a", H23, "a", free_port(), free_port())
    b = Node("B", base / "b", H40, "b", free_port(), free_port())
    world = HubWorld(a, b, HubSimulator(base / "sim"))
    world.sim.url = f"http://127.0.0.1:9{SERVICE_PATH}"  # until it runs
    world.sim.write_organizations()
    for node in world.nodes:
        node.directory.mkdir(parents=True, exist_ok=True)
        world.configure(node)
    init_with_one_ca(a, b)
    return world
