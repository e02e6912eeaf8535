"""Exceptions raised by the library when it cannot produce a document at all.

Everything short of that is a Finding (see findings.py). Each exception names the fault the
gateway answers with.
"""

from __future__ import annotations

from edxml.findings import Fault


class EdxmlError(Exception):
    """Base of the library's errors; carries a stable code and both languages."""

    code = "EdxmlError"
    fault: Fault = Fault.SCHEMA_INVALID
    vi = "Lỗi gói tin edXML"

    def __init__(self, message: str, *, vi: str | None = None) -> None:
        super().__init__(message)
        self.message_en = message
        self.message_vi = vi or self.vi


class XMLRefused(EdxmlError):
    """The bytes were refused before or while parsing."""

    code = "XMLRefused"
    vi = "Tài liệu XML bị từ chối"


class HostileXML(XMLRefused):
    """DTD, entity declarations, external references or absurd nesting: never parsed."""

    code = "HostileXML"
    vi = "Tài liệu XML chứa DTD, thực thể hoặc cấu trúc nguy hiểm; bị từ chối"


class MalformedXML(XMLRefused):
    code = "MalformedXML"
    vi = "Tài liệu XML không đúng cú pháp"


class TooLarge(XMLRefused):
    code = "TooLarge"
    fault = Fault.TOO_LARGE
    vi = "Tài liệu vượt quá kích thước cho phép"


class NotEdxml(EdxmlError):
    """Well-formed XML that is neither an edXML envelope nor a status packet."""

    code = "NotEdxml"
    vi = "Không phải gói tin edXML"


class InvalidModel(EdxmlError):
    """The writer was handed a model it cannot write strictly (e.g. a missing date)."""

    code = "InvalidModel"
    fault = Fault.RULE_VIOLATION
    vi = "Dữ liệu gói tin không hợp lệ để ghi"
