"""Paths of elements as every finding names them.

Below the root, by local name, with a 1-based index where a name repeats among its siblings:
`/edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId`. The reader, the schema check and the
signature check all speak this one dialect, so a clerk can match findings by path.
"""

from __future__ import annotations

from lxml import etree

HEADER_PATH = "/edXMLEnvelope/edXMLHeader"


def element_path(element: etree._Element) -> str:
    steps = []
    node: etree._Element | None = element
    while node is not None:
        parent = node.getparent()
        if parent is None:
            break
        name = etree.QName(node).localname
        same = [c for c in parent if isinstance(c.tag, str) and etree.QName(c).localname == name]
        steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/" + "/".join(reversed(steps))
