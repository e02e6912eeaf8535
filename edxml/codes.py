"""Code tables of QCVN 102:2016 and the namespaces edXML uses on the wire."""

from __future__ import annotations

import enum

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
SOAP_ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
# An older guide's namespace that the national axis refuses; recognised only to say so.
DEPRECATED_NAMESPACES = frozenset({"http://www.go.vn/eDoc", "http://www.e-doc.vn/Schema/"})


class StatusCode(enum.Enum):
    """Business status of a document at one recipient (QCVN 102 status packet)."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    PROCESSING = "05"
    DONE = "06"
    RECALL_REQUESTED = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"

    @classmethod
    def parse(cls, text: str) -> StatusCode:
        """Read a code as senders write it: "5", "05", and the SDK's stray "14" for 15."""
        value = text.strip()
        if value.isdigit():
            value = f"{int(value):02d}"
        if value == "14":
            return cls.RECALL_AGREED
        return cls(value)

    @property
    def label_vi(self) -> str:
        return _STATUS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _STATUS_LABELS[self][1]


_STATUS_LABELS = {
    StatusCode.ARRIVED: ("Đã đến", "arrived"),
    StatusCode.REJECTED: ("Từ chối tiếp nhận", "rejected"),
    StatusCode.ACCEPTED: ("Đã tiếp nhận", "accepted"),
    StatusCode.ASSIGNED: ("Phân công xử lý", "assigned"),
    StatusCode.PROCESSING: ("Đang xử lý", "processing"),
    StatusCode.DONE: ("Hoàn thành", "done"),
    StatusCode.RECALL_REQUESTED: ("Yêu cầu lấy lại", "recall requested"),
    StatusCode.RECALL_AGREED: ("Đồng ý lấy lại", "recall agreed"),
    StatusCode.RECALL_REFUSED: ("Từ chối lấy lại", "recall refused"),
}


class Priority(enum.IntEnum):
    """Độ khẩn. 4 (Hỏa tốc hẹn giờ) predates Decree 30 and is ranked with Hỏa tốc."""

    NORMAL = 0
    URGENT = 1  # Khẩn
    VERY_URGENT = 2  # Thượng khẩn
    EXPRESS = 3  # Hỏa tốc
    EXPRESS_TIMED = 4  # Hỏa tốc hẹn giờ

    @property
    def rank(self) -> int:
        """Dispatch rank: higher goes first; 4 ranks with 3."""
        return min(int(self), 3)

    @property
    def label_vi(self) -> str:
        return ("Thường", "Khẩn", "Thượng khẩn", "Hỏa tốc", "Hỏa tốc hẹn giờ")[self]


class SteeringType(enum.IntEnum):
    """Loại chỉ đạo."""

    NONE = 0
    STEERING = 1
    STEERING_REPORT = 2


class BusinessDocType(enum.IntEnum):
    """BussinessDocType: what the envelope does to the document it names."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3

    @property
    def default_reason(self) -> str:
        return (
            "Văn bản điện tử mới",
            "Thu hồi văn bản điện tử",
            "Cập nhật văn bản điện tử",
            "Thay thế văn bản điện tử",
        )[self]


class ReceiverType(enum.IntEnum):
    """Receiver/ReceiverType in an update's ReceiverList (QCVN table unverified: 1 added)."""

    REMOVED = 0
    ADDED = 1
