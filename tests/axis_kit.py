"""Four real processes on loopback for the axis end-to-end tests (issue #6):

    A (agency node, province Hà Nam: hosts 000.00.00.H23)
      ──soap, mutual TLS──▶ P (the provincial axis: a relay node hosting nobody, OrganId RELAY)
      ──vxp──▶ the VXP simulator (`gateway simulate vxp`, the national axis)
      ──vxp pull──▶ B (agency node, province Hưng Yên: hosts 000.00.00.H40)

P's system on the national axis registers H23 (P speaks for its province); B's registers H40.
Statuses from B go back the same way: B uploads them, the simulator routes them to the system of
the document's sender (P), P pulls them and forwards them to A over soap.

B also takes the axis' agency list into its directory at start (`directory_sync`).

Every node is `gateway run` in its own subprocess (tests.e2e_kit.Node), the simulator too; the
simulator's control face (/_sim/) sets faults and shows what it holds.
"""

from __future__ import annotations

import json
from pathlib import Path

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

RELAY = "000.00.99.H23"  # the provincial axis node's own OrganId (its TraceHeader)
SYSTEM_P = "sys.hanam.lgsp"
SYSTEM_B = "sys.hungyen.qlvb"
SECRETS = {SYSTEM_P: "p-secret-0123456789abcdef", SYSTEM_B: "b-secret-0123456789abcdef"}
PULL_EVERY = "500ms"

_COMMON = common_sections(max_attempts=40)


def _vxp_route(url: str, system: str, secret_file: str, extra: str = "") -> str:
    return f"""
[route:national]
transport = vxp
url = {url}
system_id = {system}
secret_file = {secret_file}
organ_ids = *
pull_interval = {PULL_EVERY}
timeout = 5s
{extra}"""


@attrs.define
class Simulator(SimulatorProcess):
    """`gateway simulate vxp` in a subprocess, and its control face."""

    def write_systems(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        systems = []
        for system, agencies in ((SYSTEM_P, [H23]), (SYSTEM_B, [H40])):
            secret = self.directory / f"{system}.secret"
            secret.write_text(SECRETS[system])
            systems.append({"system_id": system, "secret_file": str(secret), "agencies": agencies})
        path = self.directory / "systems.json"
        path.write_text(json.dumps({"systems": systems}))
        listed = [{"code": code, "name": NAMES[code], "id": code, "pid": ""} for code in NAMES]
        (self.directory / "agencies.json").write_text(json.dumps(listed, ensure_ascii=False))
        return path

    def simulate_args(self) -> list[str]:
        return [
            "vxp",
            "--listen",
            "127.0.0.1:0",
            "--systems",
            str(self.write_systems()),
            "--agencies",
            str(self.directory / "agencies.json"),
            "--state-file",
            str(self.directory / "state.json"),
        ]


@attrs.define
class AxisWorld:
    a: Node
    p: Node
    b: Node
    sim: Simulator

    def start(self) -> None:
        self.sim.start()
        for node in (self.a, self.p, self.b):
            self.configure(node)
            node.start()

    def configure(self, node: Node) -> None:
        node.conf.write_text(self.config_text(node), encoding="utf-8")

    def config_text(self, node: Node) -> str:
        if node is self.a:
            return (
                node.node_section()
                + agency_sections(node)
                + f"""
[route:province]
transport = soap
url = {self.p.exchange_url}
organ_ids = *
timeout = 10s
"""
                + _COMMON
            )
        if node is self.p:
            return (
                node.node_section(f"organ_id = {RELAY}\nrelay = on\n")
                + f"""
[route:hanam]
transport = soap
url = {self.a.exchange_url}
organ_ids = {H23}
timeout = 10s
"""
                + _vxp_route(self.sim.url, SYSTEM_P, str(self.sim.directory / f"{SYSTEM_P}.secret"))
                + _COMMON
            )
        return (
            node.node_section()
            + agency_sections(node)
            + _vxp_route(
                self.sim.url,
                SYSTEM_B,
                str(self.sim.directory / f"{SYSTEM_B}.secret"),
                "directory_sync = 1h\n",
            )
            + _COMMON
        )

    def stop(self) -> None:
        for node in (self.a, self.p, self.b):
            node.stop()
        self.sim.stop()


def make_world(base: Path) -> AxisWorld:
    """Directories, configurations and dev PKI (one CA for all three nodes) for the four
    processes; nothing runs yet. The simulator URL is not known before it starts, so the
    configurations written here carry a placeholder that `start` replaces."""
    base = base.resolve()
    a = Node("A", base / "a", H23, "a", free_port(), free_port())
    p = Node("P", base / "p", RELAY, "p", free_port(), free_port())
    b = Node("B", base / "b", H40, "b", free_port(), free_port())
    world = AxisWorld(a, p, b, Simulator(base / "sim"))
    world.sim.url = "http://127.0.0.1:9/XrdAdapter/adapter"  # until it runs
    world.sim.write_systems()
    for node in (a, p, b):
        node.directory.mkdir(parents=True, exist_ok=True)
        world.configure(node)
    init_with_one_ca(a, p, b)
    return world
