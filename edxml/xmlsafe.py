"""The one hardened XML parser of the project, and the streaming parse of edXML envelopes.

Every parse of untrusted bytes goes through `parser()`, `parse()` or `parse_stream()`:
- no DTD, no entity expansion, no network: a DOCTYPE anywhere is refused as HostileXML before any
  declaration in it is looked at (billion laughs, XXE, external DTDs);
- size is checked before parsing, depth and element count while parsing;
- the base64 text of `ContentTransferEncoded` elements (or of the elements a caller names, e.g. a
  SOAP request's payload) never sits in memory whole: the streaming parse decodes it as it arrives
  into a sink the caller chooses, keeping only its size, SHA-256 and the first and last bytes
  (enough to sniff a type or find a zip's central directory).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import IO, Any, Protocol

import attrs
from lxml import etree

from edxml.errors import HostileXML, MalformedXML, TooLarge

STREAMED_LOCAL_NAME = "ContentTransferEncoded"
_FEED_CHUNK = 1 << 16
EDGE_BYTES = 1 << 16  # bytes of head and tail kept for content sniffing
_WHITESPACE = b" \t\r\n"


@attrs.frozen
class Limits:
    """Bounds checked before and while parsing; a gateway configures them from [limits]."""

    max_bytes: int = 150 * 1024 * 1024
    max_depth: int = 48
    max_elements: int = 200_000


DEFAULT_LIMITS = Limits()


def parser(*, target: Any = None) -> Any:
    """The hardened parser. `huge_tree` stays off: big payloads go through `parse_stream`."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        target=target,
    )


def reparser() -> Any:
    """A second parse of bytes that `parse_stream` has already accepted in full (DOCTYPE refused,
    size, depth and element count within limits) — never a first look at received bytes. Uses:
    signxml re-parsing its own serialisations when signing, and signature verification, which
    needs libxml2's own tree of the exact bytes (prefixes as written) for canonicalisation. A
    base64 attachment passes libxml2's 10 MB text limit, so this one has `huge_tree` on;
    everything else stays as hardened as `parser()`."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_blank_text=False,
    )


class BinarySink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


SinkFactory = Callable[[int], BinarySink]


@attrs.frozen
class DecodedBinary:
    """What one streamed base64 element decoded to."""

    size: int
    sha256: str
    head: bytes
    tail: bytes
    content: bytes | None  # None when it went to a caller's sink
    error: str | None = None  # invalid base64: what was wrong


class Base64Decoder:
    """Incremental, strict base64 decoding of text arriving in arbitrary pieces: XML whitespace
    is skipped, padding only at the end; errors are recorded (`DecodedBinary.error`), not raised.
    Without a sink the bytes collect in memory and `finish()` hands them out without a copy."""

    def __init__(self, sink: BinarySink | None) -> None:
        self._memory = io.BytesIO() if sink is None else None
        self._sink: BinarySink = self._memory if self._memory is not None else sink  # type: ignore[assignment]
        self._pending = b""
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._tail = b""
        self._error: str | None = None
        self._ended = False  # padding seen: nothing may follow

    def feed(self, text: str) -> None:
        if self._error is not None:
            return
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            self._error = "non-ASCII character in base64 text"
            return
        raw = raw.translate(None, _WHITESPACE)
        if not raw:
            return
        if self._ended:
            self._error = "data after base64 padding"
            return
        data = self._pending + raw
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        if usable:
            self._decode(data[:usable])

    def _decode(self, chunk: bytes) -> None:
        if b"=" in chunk[:-4]:
            self._error = "base64 padding inside the data"
            return
        try:
            out = base64.b64decode(chunk, validate=True)
        except binascii.Error as exc:
            self._error = f"invalid base64: {exc}"
            return
        if chunk.endswith(b"="):
            self._ended = True
        self._emit(out)

    def _emit(self, out: bytes) -> None:
        if not out:
            return
        self._hash.update(out)
        self._size += len(out)
        if len(self._head) < EDGE_BYTES:
            self._head += out[: EDGE_BYTES - len(self._head)]
        self._tail = (self._tail + out)[-EDGE_BYTES:]
        self._sink.write(out)

    def finish(self) -> DecodedBinary:
        if self._error is None and self._pending:
            self._error = f"base64 text length is not a multiple of 4 ({len(self._pending)} left)"
        return DecodedBinary(
            size=self._size,
            sha256=self._hash.hexdigest(),
            head=bytes(self._head),
            tail=self._tail,
            content=self._memory.getvalue() if self._memory is not None else None,
            error=self._error,
        )


class _GuardedBuilder:
    """Parser target: builds the tree, refuses DTDs, bounds depth/count, streams base64 text."""

    def __init__(
        self,
        limits: Limits,
        sink_factory: SinkFactory | None,
        stream: bool,
        names: Collection[str] = (STREAMED_LOCAL_NAME,),
    ) -> None:
        self._tb: Any = etree.TreeBuilder()
        self._limits = limits
        self._sink_factory = sink_factory
        self._stream = stream
        self._qualified = frozenset(n for n in names if n.startswith("{"))
        self._local = frozenset(n for n in names if not n.startswith("{"))
        self._depth = 0
        self._count = 0
        self._decoder: Base64Decoder | None = None
        self.refusal: Exception | None = None
        self.decoded: dict[etree._Element, DecodedBinary] = {}

    def _refuse(self, exc: Exception) -> None:
        if self.refusal is None:
            self.refusal = exc
        raise exc

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        self._refuse(HostileXML(f"DOCTYPE declarations are refused (<!DOCTYPE {name}>)"))

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> etree._Element:
        self._depth += 1
        self._count += 1
        if self._depth > self._limits.max_depth:
            self._refuse(HostileXML(f"nesting deeper than {self._limits.max_depth} elements"))
        if self._count > self._limits.max_elements:
            self._refuse(HostileXML(f"more than {self._limits.max_elements} elements"))
        ns = {(k or None): v for k, v in (nsmap or {}).items()}
        element: etree._Element = self._tb.start(tag, dict(attrib), ns)
        if self._stream and (tag in self._qualified or tag.rpartition("}")[2] in self._local):
            index = len(self.decoded)
            sink = self._sink_factory(index) if self._sink_factory else None
            self._decoder = Base64Decoder(sink)
        return element

    def end(self, tag: str) -> etree._Element:
        self._depth -= 1
        element: etree._Element = self._tb.end(tag)
        if self._decoder is not None:
            self.decoded[element] = self._decoder.finish()
            self._decoder = None
        return element

    def data(self, text: str) -> None:
        if self._decoder is not None:
            self._decoder.feed(text)
        else:
            self._tb.data(text)

    # Inside the root, comments and PIs are kept: a processing instruction is part of what a
    # signature's canonical form covers. Before and after the root they are dropped, because
    # TreeBuilder would take the last of them for the document itself.
    def comment(self, text: str) -> None:
        if self._depth > 0:
            self._tb.comment(text)

    def pi(self, target: str, data: str | None = None) -> None:
        if self._depth > 0:
            self._tb.pi(target, data)

    def close(self) -> etree._Element:
        root: etree._Element = self._tb.close()
        return root


@attrs.frozen
class Parsed:
    root: etree._Element
    decoded: dict[etree._Element, DecodedBinary] = attrs.field(factory=dict)
    size: int = 0


def _chunks_of(data: bytes | bytearray) -> Iterable[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), _FEED_CHUNK):
        yield bytes(view[start : start + _FEED_CHUNK])


def file_chunks(source: IO[bytes], size: int = _FEED_CHUNK) -> Iterator[bytes]:
    """A binary file in fixed pieces, for `parse_stream`: iterating the file itself yields lines,
    and a base64 payload without line breaks would be one line as big as the file."""
    while block := source.read(size):
        yield block


def parse_stream(
    source: bytes | Iterable[bytes],
    *,
    limits: Limits = DEFAULT_LIMITS,
    sink_factory: SinkFactory | None = None,
    stream_binary: bool = True,
    stream_names: Collection[str] = (STREAMED_LOCAL_NAME,),
) -> Parsed:
    """Parse untrusted XML fed in chunks; base64 of the streamed elements goes to sinks.

    `stream_names` says which elements are streamed: a bare local name matches in any namespace,
    a Clark name (`{namespace}local`) only there. `sink_factory(i)` gives the sink of the i-th
    streamed element (document order); without one, decoded bytes are kept in memory
    (DecodedBinary.content). A streamed element keeps no text in the tree.
    """
    if isinstance(source, bytes | bytearray):
        if len(source) > limits.max_bytes:
            raise TooLarge(f"{len(source)} bytes exceeds the limit of {limits.max_bytes}")
        chunks: Iterable[bytes] = _chunks_of(source)
    else:
        chunks = source
    builder = _GuardedBuilder(limits, sink_factory, stream_binary, stream_names)
    xml_parser = parser(target=builder)
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > limits.max_bytes:
                raise TooLarge(f"more than {limits.max_bytes} bytes")
            xml_parser.feed(chunk)
        root = xml_parser.close()
    except (HostileXML, TooLarge):
        raise
    except etree.XMLSyntaxError as exc:
        if builder.refusal is not None:
            raise builder.refusal from None
        raise MalformedXML(f"not well-formed XML: {exc}") from None
    except Exception:
        if builder.refusal is not None:
            raise builder.refusal from None
        raise
    if builder.refusal is not None:
        raise builder.refusal
    if total == 0:
        raise MalformedXML("empty document")
    return Parsed(root=root, decoded=builder.decoded, size=total)


def parse(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse a small untrusted document whole (SOAP bodies, status packets, XSDs of ours)."""
    return parse_stream(data, limits=limits, stream_binary=False).root


class _Discard:
    def write(self, data: bytes) -> None:
        pass


def faithful_tree(data: bytes, *, limits: Limits = DEFAULT_LIMITS, gated: bool = False) -> Any:
    """The document as libxml2 reads it, prefixes as written: for work on the exact bytes
    (canonicalising a signed document, finding where a hop goes), never for reading content.

    `parse_stream` refuses hostile bytes first (streaming attachments away: only its verdict is
    wanted), unless `gated`: these very bytes have just passed it. Its own tree cannot serve:
    built through a parser target, it rewrites prefixes when two name one namespace."""
    if not gated:
        parse_stream(data, limits=limits, sink_factory=lambda index: _Discard())
    return etree.fromstring(data, reparser())
