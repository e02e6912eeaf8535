"""Hops: what a relay adds to an envelope it forwards, and how a verifier sees past it.

Each node that relays an envelope appends one `TraceHeader` (its OrganId and the time) after the
ones already there, keeping them (standards.md §2.4). The sender's enveloped signature covers the
whole document, the trace list included, so a hop would break it unless verification knows which
trace headers came after the signing. Two rules make that exact, with no re-serialisation:

- `append_hop` writes the new element's bytes directly after the end tag of the last
  `TraceHeader`, with no whitespace around it: every other byte stays as received, and removing
  the element (keeping its tail, which is the text that followed the previous one) gives back the
  very tree that was signed.
- `appended_hops` names the trailing `TraceHeader` elements a verifier may leave out, newest
  first, and only ones shaped like a hop (OrganId, Timestamp, nothing else). The first trace
  header, the origin, is never one of them: it stays under the sender's signature.

Hops are evidence of the route, not of the content: a verdict says how many were added after
signing, and nothing any reader acts on other than routing sits in them.
"""

from __future__ import annotations

import datetime as dt
import re
from xml.sax.saxutils import escape

from lxml import etree

from edxml import xmlsafe
from edxml.codes import NS
from edxml.dates import format_timestamp
from edxml.errors import EdxmlError

__all__ = ["MAX_HOPS", "TraceNotWritable", "append_hop", "appended_hops", "trace_headers"]

# A route longer than this is a loop or an attack; verification tries no more than this many.
MAX_HOPS = 16

_TRACE_LIST = f"{{{NS}}}TraceHeaderList"
_TRACE = f"{{{NS}}}TraceHeader"
_HOP_CHILDREN = (f"{{{NS}}}OrganId", f"{{{NS}}}Timestamp")


class TraceNotWritable(EdxmlError):
    """The envelope has no trace list a hop can be appended to, bytes intact."""

    code = "TraceNotWritable"
    vi = "Không ghi được chặng chuyển tiếp vào gói tin"


def trace_headers(root: etree._Element) -> list[etree._Element]:
    """The TraceHeader elements of the envelope's one TraceHeaderList, in order ([] if none)."""
    lists = list(root.iter(_TRACE_LIST))
    if len(lists) != 1:
        return []
    return [child for child in lists[0] if child.tag == _TRACE]


def _is_hop(element: etree._Element) -> bool:
    children = [c for c in element if isinstance(c.tag, str)]
    if [c.tag for c in children] != list(_HOP_CHILDREN):
        return False
    # Only text may sit between a hop's parts; anything else would be content outside the seal.
    return all(len(c) == 0 for c in children) and not (element.text or "").strip()


def appended_hops(root: etree._Element) -> list[etree._Element]:
    """Trailing TraceHeaders that may have been appended after signing, newest first: at most
    MAX_HOPS, never the first, and only while each one is shaped like a hop."""
    headers = trace_headers(root)
    found: list[etree._Element] = []
    for element in reversed(headers[1:]):
        if len(found) >= MAX_HOPS or not _is_hop(element):
            break
        found.append(element)
    return found


def append_hop(
    data: bytes,
    organ_id: str,
    at: dt.datetime,
    *,
    limits: xmlsafe.Limits = xmlsafe.DEFAULT_LIMITS,
    gated: bool = False,
) -> bytes:
    """`data` with one more TraceHeader (organ_id, `at` in Vietnam time) after the last one.
    `gated` as for `xmlsafe.faithful_tree` (a relay has just examined these bytes).

    Raises TraceNotWritable when the envelope has no TraceHeader to follow, or when its bytes do
    not let the last one's end tag be found for certain."""
    root = xmlsafe.faithful_tree(data, limits=limits, gated=gated)
    headers = trace_headers(root)
    if not headers:
        raise TraceNotWritable(
            "the envelope has no TraceHeader after which a hop could be written",
            vi="gói tin không có TraceHeader nào để ghi thêm chặng chuyển tiếp",
        )
    last = headers[-1]
    prefix = last.prefix
    qname = f"{prefix}:TraceHeader" if prefix else "TraceHeader"
    same = [e for e in root.iter(_TRACE) if e.prefix == prefix]
    # Each such element has exactly one end tag (it has children, so it is not self-closed);
    # a look-alike in a comment or CDATA section would make the counts differ.
    if any(len(e) == 0 for e in same):
        raise _unfindable()
    ends = list(re.finditer(rb"</" + re.escape(qname.encode()) + rb"[ \t\r\n]*>", data))
    if len(ends) != len(same):
        raise _unfindable()
    position = ends[same.index(last)].end()
    parent = last.getparent()
    assert parent is not None
    declare = ""
    if parent.nsmap.get(prefix) != NS:
        declare = f' xmlns:{prefix}="{NS}"' if prefix else f' xmlns="{NS}"'
    p = f"{prefix}:" if prefix else ""
    hop = (
        f"<{qname}{declare}><{p}OrganId>{escape(organ_id)}</{p}OrganId>"
        f"<{p}Timestamp>{format_timestamp(at)}</{p}Timestamp></{qname}>"
    ).encode()
    return data[:position] + hop + data[position:]


def _unfindable() -> TraceNotWritable:
    return TraceNotWritable(
        "the end of the last TraceHeader cannot be found exactly in the envelope's bytes",
        vi="không xác định chính xác được điểm kết thúc TraceHeader cuối trong gói tin",
    )
