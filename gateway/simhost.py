"""What the two axis simulators share (`simulate vxp`, `simulate edoc-hub`): a Site that can
close its connections, listening and the base URL, a clean stop that drops answers still
delayed by the `slow` fault, the loopback check of their control faces, and running one in the
foreground for the CLI (one JSON line `{"listening": URL}` on stdout once it listens)."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections import Counter
from typing import Any

import click

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

__all__ = ["SimSite", "SimulatorHost", "is_loopback", "run_foreground"]


class SimSite(Site):
    """A Site without access-log lines (the simulators log one structured line per request)
    that remembers its connections, so that stopping can close them."""

    noisy = False

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource, timeout=None)
        self.connections: set[Any] = set()

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is None:
            return None
        self.connections.add(protocol)
        original = protocol.connectionLost

        def lost(reason: Failure) -> Any:
            self.connections.discard(protocol)
            return original(reason)

        protocol.connectionLost = lost
        return protocol

    def transports(self) -> list[Any]:
        """The transports of the connections still open."""
        found = []
        for protocol in self.connections:
            channel = getattr(protocol, "_channel", protocol)  # the HTTP/1.1-or-2 wrapper
            transport = getattr(channel, "transport", None)
            if transport is not None and getattr(transport, "connected", False):
                found.append(transport)
        return found

    def log(self, request: Any) -> None:
        pass


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class SimulatorHost:
    """Listening and stopping for a simulator that sets `site`, `_reactor`, `_waiting` (the
    delayed answers) and `mount` (the path its operations live under)."""

    site: SimSite
    mount: str
    faults: Any  # with `slow`, seconds every answer is held back
    fault_hits: Counter[str]
    _reactor: Any
    _waiting: set[Deferred[None]]
    _port: Any = None

    async def answer_ready(self, request: Any, gone: list[Any], *, drop: bool) -> bool:
        """Hold the answer back by the `slow` fault, then say whether to write it: not when the
        client went away, nor when the answer is to be lost (the connection is cut instead)."""
        if self.faults.slow > 0:
            self.fault_hits["slow"] += 1
            waiting: Deferred[None] = deferLater(self._reactor, self.faults.slow, lambda: None)
            self._waiting.add(waiting)
            try:
                await waiting
            except CancelledError:
                return False
            finally:
                self._waiting.discard(waiting)
        if gone:
            return False
        if drop:
            request.channel.transport.abortConnection()
            return False
        return True

    async def start(self, listen: str = "tcp:0:interface=127.0.0.1") -> str:
        """Listen on a Twisted server endpoint description; the base URL of the operations."""
        endpoint = serverFromString(self._reactor, listen)
        self._port = await endpoint.listen(self.site)
        return self.url

    def listen(self, port: int = 0, interface: str = "127.0.0.1") -> str:
        """Listen on TCP now (no Deferred: for tests' setUp); the base URL of the operations."""
        self._port = self._reactor.listenTCP(port, self.site, interface=interface)
        return self.url

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the simulator is not listening")
        address = self._port.getHost()
        host = str(getattr(address, "host", "127.0.0.1"))
        if host in {"0.0.0.0", ""}:
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{address.port}{self.mount}"

    async def stop(self) -> None:
        """Stop listening, drop answers still waiting (`slow`), close open connections."""
        for waiting in list(self._waiting):
            waiting.cancel()
        if self._port is not None:
            port, self._port = self._port, None
            await port.stopListening()
        for _ in range(100):
            transports = self.site.transports()
            if not transports:
                break
            for transport in transports:
                transport.abortConnection()
            await deferLater(self._reactor, 0.01, lambda: None)


def run_foreground(simulator: SimulatorHost, *, name: str, listen: str, description: str) -> None:
    """Run `simulator` until SIGTERM/SIGINT; exit 0, or 1 when it cannot listen."""
    from twisted.internet import reactor

    failed: list[BaseException] = []

    async def start() -> None:
        try:
            url = await simulator.start(description)
        except Exception as exc:
            failed.append(exc)
            click.echo(f"simulate {name}: cannot listen on {listen}: {exc}", err=True)
            reactor.stop()
            return
        click.echo(json.dumps({"listening": url}))
        sys.stdout.flush()

    reactor.callWhenRunning(lambda: defer.Deferred.fromCoroutine(start()))
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: defer.Deferred.fromCoroutine(simulator.stop())
    )
    reactor.run()
    sys.exit(1 if failed else 0)
