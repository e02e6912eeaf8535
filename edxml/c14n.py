"""Canonical XML 1.0 (inclusive and exclusive) of a whole document, streamed in bounded pieces.

XMLDSig's enveloped signature over URI="" digests the canonical form of the document without its
comments and without the Signature element. libxml2's own C14N writer (lxml `write_c14n`) holds a
large text node whole, escaped, and hands it over in one piece, so a 20 MB envelope costs three
times its size to digest. `write_document` walks the lxml tree instead and writes the canonical
bytes to any `write()` in pieces of at most `CHUNK` characters of text: the only copy of a big
base64 attachment it makes is the one `element.text` returns.

Only what an enveloped signature needs is here: the document node-set without comments, minus one
excluded subtree (all of whose ancestors are in the set, so C14N 1.1 renders it exactly as 1.0
does). `subtree` canonicalises an element on its own (SignedInfo) in its document context.
Both are cross-checked against libxml2 in tests/test_c14n.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from lxml import etree

XML_NS = "http://www.w3.org/XML/1998/namespace"
CHUNK = 1 << 16  # characters of one text node escaped and written at a time
_FLUSH = 1 << 16  # bytes of small pieces gathered before one write()


class Writable(Protocol):
    def write(self, data: bytes, /) -> Any: ...


def _escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    )


def _escape_attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def _pi(node: etree._Element) -> str:
    target = node.target  # type: ignore[attr-defined]
    return f"<?{target} {node.text}?>" if node.text else f"<?{target}?>"


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return "", tag


def _attributes(element: etree._Element) -> list[tuple[str, str, str | None, str]]:
    """(namespace URI, local name, prefix, value) of each attribute, with its written prefix.

    lxml keys attributes by namespace URI; when two prefixes in scope share that URI, the prefix
    actually written is asked of XPath's name(), which reads the node itself.
    """
    items = list(element.attrib.items())
    if not items:
        return []
    nsmap = element.nsmap
    out: list[tuple[str, str, str | None, str]] = []
    for index, (key, value) in enumerate(items, start=1):
        uri, local = _split(str(key))
        prefix: str | None = None
        if uri == XML_NS:
            prefix = "xml"
        elif uri:
            prefixes = [p for p, u in nsmap.items() if u == uri and p is not None]
            if len(prefixes) == 1:
                prefix = prefixes[0]
            else:
                name = str(element.xpath(f"name(@*[{index}])"))
                prefix = name.partition(":")[0] if ":" in name else None
        out.append((uri, local, prefix, str(value)))
    return out


class _Walker:
    def __init__(
        self,
        out: Writable,
        exclusive: bool,
        inclusive_prefixes: Sequence[str],
        exclude: Sequence[etree._Element],
    ) -> None:
        self.out = out
        self.exclusive = exclusive
        # "#default" in an InclusiveNamespaces PrefixList names the default namespace.
        self.inclusive = {None if p == "#default" else p for p in inclusive_prefixes}
        self.exclude = tuple(exclude)
        self.pending: list[str] = []
        self.pending_size = 0

    def emit(self, piece: str) -> None:
        self.pending.append(piece)
        self.pending_size += len(piece)
        if self.pending_size >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.out.write("".join(self.pending).encode("utf-8"))
            self.pending = []
            self.pending_size = 0

    def text(self, text: str | None) -> None:
        if not text:
            return
        if len(text) <= CHUNK:
            self.emit(_escape_text(text))
            return
        self.flush()
        for start in range(0, len(text), CHUNK):
            self.out.write(_escape_text(text[start : start + CHUNK]).encode("utf-8"))

    def namespaces(
        self,
        element: etree._Element,
        prefix: str | None,
        attributes: list[tuple[str, str, str | None, str]],
        rendered: dict[str | None, str],
    ) -> dict[str | None, str]:
        """The namespace declarations this element renders (prefix None: the default one)."""
        in_scope: dict[str | None, str] = {
            p: u for p, u in element.nsmap.items() if u or p is not None
        }
        if self.exclusive:
            wanted: set[str | None] = {prefix}
            wanted.update(p for _, _, p, _ in attributes if p is not None and p != "xml")
            wanted.update(p for p in self.inclusive if p in in_scope)
        else:
            wanted = set(in_scope) | ({None} if rendered.get(None) else set())
        declared: dict[str | None, str] = {}
        for p in wanted:
            value = in_scope.get(p, "")
            if rendered.get(p, "") != value:
                declared[p] = value
        return declared

    def element(self, element: etree._Element, rendered: dict[str | None, str]) -> None:
        local = _split(str(element.tag))[1]
        prefix = element.prefix
        attributes = _attributes(element)
        declared = self.namespaces(element, prefix, attributes, rendered)
        name = f"{prefix}:{local}" if prefix else local
        parts = [f"<{name}"]
        for p in sorted(declared, key=lambda k: "" if k is None else k):
            value = _escape_attribute(declared[p])
            parts.append(f' xmlns="{value}"' if p is None else f' xmlns:{p}="{value}"')
        for _, a_local, a_prefix, value in sorted(attributes, key=lambda a: (a[0], a[1])):
            a_name = f"{a_prefix}:{a_local}" if a_prefix else a_local
            parts.append(f' {a_name}="{_escape_attribute(value)}"')
        parts.append(">")
        self.emit("".join(parts))
        if declared:
            rendered = {**rendered, **declared}
        self.text(element.text)
        for child in element:
            self.node(child, rendered)
        self.emit(f"</{name}>")

    def node(self, node: etree._Element, rendered: dict[str | None, str]) -> None:
        if isinstance(node, etree._Comment) or any(node is e for e in self.exclude):
            pass
        elif isinstance(node, etree._ProcessingInstruction):
            self.emit(_pi(node))
        elif isinstance(node.tag, str):
            self.element(node, rendered)
        else:  # an entity reference cannot occur: documents with a DTD are refused before this
            raise ValueError(f"cannot canonicalise a {type(node).__name__} node")
        self.text(node.tail)

    def document(self, root: etree._Element) -> None:
        for before in reversed(list(root.itersiblings(preceding=True))):
            if isinstance(before, etree._ProcessingInstruction):
                self.emit(_pi(before) + "\n")
        self.element(root, {})
        for after in root.itersiblings():
            if isinstance(after, etree._ProcessingInstruction):
                self.emit("\n" + _pi(after))
        self.flush()


def write_document(
    root: etree._Element,
    out: Writable,
    *,
    exclusive: bool,
    inclusive_prefixes: Sequence[str] = (),
    exclude: etree._Element | Sequence[etree._Element] | None = None,
) -> None:
    """Write the canonical form (without comments) of `root`'s document, less `exclude`.

    `exclude` (the enveloped Signature, and the hops a relay appended after signing) is left out
    with its subtree; its tail text stays, as it belongs to the parent. `inclusive_prefixes` is
    exclusive C14N's InclusiveNamespaces list.
    """
    if root.getparent() is not None:
        raise ValueError("write_document takes the root element of a document")
    if exclude is None:
        excluded: Sequence[etree._Element] = ()
    elif isinstance(exclude, etree._Element):
        excluded = (exclude,)
    else:
        excluded = exclude
    _Walker(out, exclusive, inclusive_prefixes, excluded).document(root)


# xml:* attributes an element inherits from ancestors outside the node-set (C14N 1.0 §2.4;
# C14N 1.1 inherits only these two and joins xml:base, which is refused instead).
_INHERITED_11 = frozenset({f"{{{XML_NS}}}lang", f"{{{XML_NS}}}space"})


def subtree(
    element: etree._Element,
    *,
    exclusive: bool,
    with_comments: bool,
    inclusive_prefixes: Sequence[str] | None = None,
    version11: bool = False,
) -> bytes:
    """Canonical form of `element` as a document subset of its own (SignedInfo).

    Inclusive C14N carries the ancestors' namespace declarations (lxml copies them onto the
    apex) and their xml:* attributes (added here for the duration of the call).
    """
    inherited: dict[str, str] = {}
    if not exclusive:
        for ancestor in element.iterancestors():
            for key, value in ancestor.attrib.items():
                key = str(key)
                if not key.startswith(f"{{{XML_NS}}}") or key in inherited:
                    continue
                if version11 and key not in _INHERITED_11:
                    if key == f"{{{XML_NS}}}base":
                        raise ValueError("xml:base on an ancestor under C14N 1.1 is not supported")
                    continue
                inherited[key] = str(value)
        inherited = {k: v for k, v in inherited.items() if k not in element.attrib}
    for key, value in inherited.items():
        element.set(key, value)
    try:
        return etree.tostring(
            element,
            method="c14n",
            exclusive=exclusive,
            with_comments=with_comments,
            inclusive_ns_prefixes=list(inclusive_prefixes) if inclusive_prefixes else None,
        )
    finally:
        for key in inherited:
            del element.attrib[key]
