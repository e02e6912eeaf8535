"""XSD validation of edXML envelopes and status packets against our own schemas (schemas/*.xsd).

The schemas describe exactly what edxml/writer.py emits (see their header comments). Reading them
from disk is the library's only file access.

Big envelopes are validated without a second copy of their base64: pass the tree that
`reader.read()` kept (`ReadResult.root`), in which xmlsafe has already streamed the text of every
ContentTransferEncoded out to a decoder (and reported bad base64 as a finding); the schema's
xs:base64Binary accepts the empty text left behind. Given bytes, validate() parses them the same
streaming way with the decoded bytes thrown away, and reports bad base64 itself.

lxml validators keep their error log on the instance, so one compiled schema per thread is kept
rather than one shared by the gateway's worker threads.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from edxml import xmlsafe
from edxml.codes import NS
from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.paths import element_path
from edxml.xmlsafe import DEFAULT_LIMITS, Limits

Kind = Literal["envelope", "status"]
KINDS: tuple[Kind, ...] = ("envelope", "status")
ENV_VAR = "EDXML_SCHEMA_DIR"
SCHEMA_FILES = {
    "envelope": "edxml-envelope.xsd",
    "status": "edxml-status.xsd",
    "common": "edxml-common.xsd",
}

SCHEMA_INVALID = FindingCode(
    "SchemaInvalid",
    Severity.ERROR,
    "Not valid against the edXML {kind} schema: {message}",
    "Không hợp lệ theo lược đồ XSD của {kind_vi} edXML: {message}",
    Fault.SCHEMA_INVALID,
)

_KIND_VI = {"envelope": "gói tin văn bản", "status": "gói tin trạng thái"}
_local = threading.local()
_PREFIXED_STEP = re.compile(r"/[A-Za-z_][\w.-]*:")


class SchemaNotFound(RuntimeError):
    """The schemas directory is not where the package expects it (a broken installation)."""


def schema_dir() -> Path:
    """$EDXML_SCHEMA_DIR, else the repository's schemas/, else the installed data files."""
    override = os.environ.get(ENV_VAR)
    candidates = (
        [Path(override)]
        if override
        else [
            Path(__file__).resolve().parents[1] / "schemas",
            Path(sys.prefix) / "share" / "edxml-gateway" / "schemas",
        ]
    )
    for candidate in candidates:
        if (candidate / SCHEMA_FILES["envelope"]).is_file():
            return candidate
    raise SchemaNotFound("edXML schemas not found in " + ", ".join(str(c) for c in candidates))


def load(kind: str) -> etree.XMLSchema:
    """The compiled schema of `kind`, compiled once per thread and schema directory."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}; expected one of {KINDS}")
    directory = schema_dir()
    cache: dict[tuple[Path, str], etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    key = (directory, kind)
    if key not in cache:
        path = directory / SCHEMA_FILES[kind]
        # Our own files, but still through the hardened parser: no DTD, no network. The base URL
        # lets xs:include find edxml-common.xsd beside it.
        document = etree.fromstring(
            path.read_bytes(), parser=xmlsafe.parser(), base_url=path.as_uri()
        )
        cache[key] = etree.XMLSchema(document)
    return cache[key]


class _Discard:
    def write(self, data: bytes, /) -> None:
        pass


def validate(
    document: etree._Element | etree._ElementTree | bytes,
    kind: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[Finding, ...]:
    """Validate a package against the `kind` schema ("envelope" or "status", as in
    `document.kind`); one ERROR finding per schema error. An unknown kind is a ValueError."""
    schema = load(kind)
    findings: list[Finding] = []
    if isinstance(document, bytes | bytearray):
        parsed = xmlsafe.parse_stream(
            bytes(document), limits=limits, sink_factory=lambda _: _Discard()
        )
        tree: Any = parsed.root
        for element, binary in parsed.decoded.items():
            if binary.error is not None:
                message = f"{etree.QName(element).localname}: {binary.error}"
                findings.append(_finding(element_path(element), kind, message))
    else:
        tree = document
    if schema.validate(tree):
        return tuple(findings)
    for error in schema.error_log:
        message = error.message
        if error.line:
            message = f"line {error.line}: {message}"
        path = _reader_path(tree, error.path)
        findings.append(_finding(path, kind, message))
    return tuple(findings)


def _finding(path: str | None, kind: str, message: str) -> Finding:
    message = message.replace("{" + NS + "}", "edXML:")
    return SCHEMA_INVALID(path, kind=kind, kind_vi=_KIND_VI[kind], message=message)


def _reader_path(tree: Any, xpath: str | None) -> str | None:
    """lxml's XPath of the failing element (/*/*[2]/edXML:Foo…) as the reader writes paths:
    local names below the root, /edXMLEnvelope/edXMLHeader/…, indexed where names repeat."""
    if not xpath:
        return None
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    prefixes: dict[str, str] = {}
    for element in root.iter():
        for prefix, uri in element.nsmap.items():
            if prefix:
                prefixes.setdefault(prefix, uri)
    try:
        found = root.xpath(xpath, namespaces=prefixes)
    except etree.XPathError:
        found = None
    if isinstance(found, list) and len(found) == 1 and isinstance(found[0], etree._Element):
        return element_path(found[0])
    return _PREFIXED_STEP.sub("/", xpath)
