"""A minimal, synchronous client of our own office face, for the CLI (`gateway send`).

It speaks exactly what schemas/office.wsdl says (SOAP 1.1, Bearer token) with the standard
library, so an operator can hand a file to a running node without Twisted or zeep. Responses are
parsed with the hardened parser like anything else that arrives over a network.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

import attrs
from lxml import etree

from edxml import xmlsafe
from gateway.soap import OFFICE_NS, SOAP11_NS, Face, SoapVersion, envelope


@attrs.frozen
class SentDelivery:
    organ_id: str
    state: str
    route: str | None


@attrs.frozen
class Sent:
    message_id: str
    deliveries: tuple[SentDelivery, ...]


class OfficeFault(Exception):
    """The face refused the call: our fault code and both messages."""

    def __init__(self, code: str, message_en: str, message_vi: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_en = message_en
        self.message_vi = message_vi
        self.retryable = retryable


def _text(element: etree._Element, name: str) -> str | None:
    found = element.find(f"{{{OFFICE_NS}}}{name}")
    return found.text if found is not None else None


def call(
    url: str, token: str, operation: str, body: etree._Element, *, timeout: float = 60
) -> etree._Element:
    """POST one operation; the response element, or OfficeFault."""
    request = urllib.request.Request(
        url,
        data=envelope(SoapVersion.SOAP11, body),
        method="POST",
        headers={
            "Content-Type": SoapVersion.SOAP11.content_type,
            "SOAPAction": f'"{Face.OFFICE.action(operation)}"',
            "Authorization": f"Bearer {token}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        data = exc.read()
    root = xmlsafe.parse(data)
    body_el = root.find(f"{{{SOAP11_NS}}}Body")
    if body_el is None or len(body_el) == 0:
        raise OfficeFault("BadResponse", "the face answered without a SOAP body", "", True)
    answer = body_el[0]
    if answer.tag == f"{{{SOAP11_NS}}}Fault":
        detail = answer.find(".//{*}GatewayFault")
        if detail is None:
            raise OfficeFault("Fault", answer.findtext("faultstring") or "", "", False)
        raise OfficeFault(
            _text(detail, "Code") or "Fault",
            _text(detail, "MessageEn") or "",
            _text(detail, "MessageVi") or "",
            (_text(detail, "Retryable") or "false") == "true",
        )
    return answer


def _sent(answer: etree._Element) -> Sent:
    deliveries = tuple(
        SentDelivery(
            organ_id=_text(d, "OrganId") or "",
            state=_text(d, "State") or "",
            route=_text(d, "Route"),
        )
        for d in answer.findall(f"{{{OFFICE_NS}}}Delivery")
    )
    return Sent(message_id=_text(answer, "MessageId") or "", deliveries=deliveries)


def recall_document(url: str, token: str, document_id: str, reason: str) -> Sent:
    """RecallDocument: a revoke envelope to every recipient of the document (R14)."""
    body = etree.Element(f"{{{OFFICE_NS}}}RecallDocument", nsmap={"o": OFFICE_NS})
    etree.SubElement(body, f"{{{OFFICE_NS}}}DocumentId").text = document_id
    etree.SubElement(body, f"{{{OFFICE_NS}}}Reason").text = reason
    return _sent(call(url, token, "RecallDocument", body))


def send_document(url: str, token: str, package: bytes, *, reference: str | None = None) -> Sent:
    body = etree.Element(f"{{{OFFICE_NS}}}SendDocument", nsmap={"o": OFFICE_NS})
    etree.SubElement(body, f"{{{OFFICE_NS}}}Envelope").text = base64.b64encode(package).decode()
    if reference:
        etree.SubElement(body, f"{{{OFFICE_NS}}}ClientReference").text = reference
    return _sent(call(url, token, "SendDocument", body))
