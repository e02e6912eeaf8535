"""Identifier codes: agency OrganIds and edXML DocumentIds (QCVN 102:2016 §3, SĐ1:2022).

An OrganId is either the classic 13-character `XXX.XX.XX.YNN` code of the agency tree or, since
SĐ1:2022, any code of at most 35 characters allocated under QĐ 20/2020/QĐ-TTg. A DocumentId is
`{OrganId},{yyyy/MM/dd},{CodeNumber}/{CodeNotation}` of the issuing agency; old SDK samples also
carry `{OrganId},{yyyy},{sequence}`, which is recognised so that it can be reported, never emitted.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import ClassVar

import attrs

from edxml.errors import EdxmlError
from edxml.findings import Fault
from edxml.model import Code, Organization

# ASCII digits only and \Z, not $: "٠٠٠.٠٠.٠٠.H٢٣" and a trailing newline are not codes.
ORGAN_ID_CLASSIC = re.compile(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}\Z")
ORGAN_ID_EXTENDED = re.compile(r"^[0-9A-Za-z.\-:_]{1,35}\Z")
ORGAN_ID_MAX_LENGTH = 35


class OrganIdForm(enum.Enum):
    CLASSIC = "classic"  # XXX.XX.XX.YNN, QCVN 102:2016
    EXTENDED = "extended"  # any QĐ 20/2020 code of ≤ 35 characters, SĐ1:2022


def classify(organ_id: str) -> OrganIdForm | None:
    """Which form `organ_id` is written in, or None when it is not an OrganId at all."""
    if ORGAN_ID_CLASSIC.match(organ_id):
        return OrganIdForm.CLASSIC
    if (
        ORGAN_ID_EXTENDED.match(organ_id)
        and not organ_id.startswith(".")
        and not organ_id.endswith(".")
        and ".." not in organ_id
    ):
        return OrganIdForm.EXTENDED
    return None


def is_valid(organ_id: str) -> bool:
    return classify(organ_id) is not None


def find_organ_id(text: str) -> str | None:
    """The first classic OrganId standing alone in `text` (a certificate's OU, say), upper-cased.

    Standing alone means no ASCII letter, digit or dot glued to it, so `1000.00.00.H23` and
    `1.000656.000.00.00.H29` hold none. Extended codes are not looked for: in free text they
    cannot be told from other words. Some CAs write the unit letter in lower case.
    """
    for word in re.finditer(r"[0-9A-Za-z.]+", text):
        candidate = word.group(0).upper()
        if ORGAN_ID_CLASSIC.match(candidate):
            return candidate
    return None


@attrs.frozen
class ClassicOrganId:
    """A classic code read right to left: level-1 unit `YNN`, then levels 2, 3 and 4.

    A zero group means "this level is not used", so `000.00.00.H41` is the level-1 unit itself and
    `000.00.14.H20` a level-2 unit under it.
    """

    level4: int
    level3: int
    level2: int
    unit_letter: str
    unit_number: int

    @classmethod
    def parse(cls, organ_id: str) -> ClassicOrganId:
        if not ORGAN_ID_CLASSIC.match(organ_id):
            raise ValueError(f"not a classic OrganId (XXX.XX.XX.YNN): {organ_id!r}")
        level4, level3, level2, unit = organ_id.split(".")
        return cls(int(level4), int(level3), int(level2), unit[0], int(unit[1:]))

    @classmethod
    def try_parse(cls, organ_id: str) -> ClassicOrganId | None:
        return cls.parse(organ_id) if ORGAN_ID_CLASSIC.match(organ_id) else None

    def __str__(self) -> str:
        return (
            f"{self.level4:03d}.{self.level3:02d}.{self.level2:02d}."
            f"{self.unit_letter}{self.unit_number:02d}"
        )

    @property
    def level(self) -> int:
        """1 for a level-1 unit (a ministry, a province) down to 4."""
        if self.level4:
            return 4
        if self.level3:
            return 3
        if self.level2:
            return 2
        return 1

    @property
    def parent(self) -> ClassicOrganId | None:
        """The unit one level up (the lowest non-zero level zeroed); None for a level-1 unit."""
        if self.level4:
            return attrs.evolve(self, level4=0)
        if self.level3:
            return attrs.evolve(self, level3=0)
        if self.level2:
            return attrs.evolve(self, level2=0)
        return None

    @property
    def root(self) -> ClassicOrganId:
        """The level-1 unit this one belongs to."""
        return ClassicOrganId(0, 0, 0, self.unit_letter, self.unit_number)


# --- DocumentId -------------------------------------------------------------------------------

_DATE = re.compile(r"^([0-9]{4})/([0-9]{2})/([0-9]{2})\Z")
_YEAR = re.compile(r"^[0-9]{4}\Z")
_SEQUENCE = re.compile(r"^[0-9]+\Z")

# Part names as the messages give them, in both languages.
PARTS = {
    "format": ("format", "cấu trúc"),
    "OrganId": ("OrganId", "mã định danh cơ quan (OrganId)"),
    "date": ("date", "ngày ban hành"),
    "code": ("number/notation", "số/ký hiệu"),
    "CodeNumber": ("CodeNumber", "số (CodeNumber)"),
    "CodeNotation": ("CodeNotation", "ký hiệu (CodeNotation)"),
}


class DocumentIdInvalid(EdxmlError, ValueError):
    """A DocumentId that cannot be read; `part` names the part at fault (a key of PARTS)."""

    code = "DocumentIdInvalid"
    fault = Fault.RULE_VIOLATION
    vi = "Mã định danh văn bản không hợp lệ"

    def __init__(self, value: str, part: str, reason_en: str, reason_vi: str) -> None:
        part_en, part_vi = PARTS[part]
        super().__init__(
            f"DocumentId {value!r}: {part_en}: {reason_en}",
            vi=f"Mã định danh văn bản {value!r}: {part_vi}: {reason_vi}",
        )
        self.value = value
        self.part = part
        self.reason_en = reason_en
        self.reason_vi = reason_vi


def _format_date(date: dt.date) -> str:
    return f"{date.year:04d}/{date.month:02d}/{date.day:02d}"


@attrs.frozen
class DocumentId:
    """`{OrganId},{yyyy/MM/dd},{CodeNumber}/{CodeNotation}` of the issuing agency."""

    organ_id: str
    date: dt.date
    code_number: str
    code_notation: str

    legacy: ClassVar[bool] = False

    @classmethod
    def parse(cls, text: str) -> DocumentId | LegacyDocumentId:
        """Read a DocumentId; the old `{OrganId},{yyyy},{seq}` form gives a LegacyDocumentId.

        Raises DocumentIdInvalid naming the part at fault. The code is split on the first '/'
        after the date, so a notation that itself holds '/' (`30/2020/NĐ-CP`) stays whole.
        """
        raw = text.strip()
        parts = [p.strip() for p in raw.split(",", 2)]
        if len(parts) != 3 or not all(parts):
            raise DocumentIdInvalid(
                text,
                "format",
                "expected {OrganId},{yyyy/MM/dd},{CodeNumber}/{CodeNotation}",
                "cần có dạng {OrganId},{yyyy/MM/dd},{Số}/{Ký hiệu}",
            )
        organ_id, date_text, code_text = parts
        if not is_valid(organ_id):
            raise DocumentIdInvalid(
                text,
                "OrganId",
                f"{organ_id!r} is not a valid OrganId",
                f"{organ_id!r} không phải mã định danh hợp lệ",
            )
        if _YEAR.match(date_text) and _SEQUENCE.match(code_text):
            return LegacyDocumentId(organ_id, int(date_text), code_text)
        match = _DATE.match(date_text)
        if match is None:
            raise DocumentIdInvalid(
                text,
                "date",
                f"{date_text!r} is not written yyyy/MM/dd",
                f"{date_text!r} không theo dạng yyyy/MM/dd",
            )
        try:
            date = dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise DocumentIdInvalid(
                text,
                "date",
                f"{date_text} is not a date that exists",
                f"{date_text} là ngày không tồn tại",
            ) from None
        number, slash, notation = code_text.partition("/")
        number, notation = number.strip(), notation.strip()
        if not slash:
            raise DocumentIdInvalid(
                text,
                "code",
                f"{code_text!r} has no '/' between number and notation",
                f"{code_text!r} thiếu dấu '/' giữa số và ký hiệu",
            )
        if not number:
            raise DocumentIdInvalid(text, "CodeNumber", "is empty", "bị trống")
        if not notation:
            raise DocumentIdInvalid(text, "CodeNotation", "is empty", "bị trống")
        return cls(organ_id, date, number, notation)

    @classmethod
    def for_header(cls, org: Organization | str, date: dt.date, code: Code | str) -> DocumentId:
        """The DocumentId a sender writes for its document (From, PromulgationDate, Code)."""
        organ_id = org.organ_id if isinstance(org, Organization) else org
        if isinstance(code, Code):
            number, notation = code.code_number, code.code_notation
        else:
            number, _, notation = code.partition("/")
        built = cls(organ_id.strip(), date, number.strip(), notation.strip())
        # Parsing what we would write proves it reads back as the same identifier.
        if cls.parse(str(built)) != built:
            raise DocumentIdInvalid(
                str(built), "code", "does not read back unchanged", "không đọc lại được nguyên vẹn"
            )
        return built

    @property
    def code(self) -> str:
        return f"{self.code_number}/{self.code_notation}"

    def __str__(self) -> str:
        return f"{self.organ_id},{_format_date(self.date)},{self.code}"


@attrs.frozen
class LegacyDocumentId:
    """`{OrganId},{yyyy},{sequence}` from old SDK samples: readable, never to be emitted."""

    organ_id: str
    year: int
    sequence: str

    legacy: ClassVar[bool] = True

    def __str__(self) -> str:
        return f"{self.organ_id},{self.year:04d},{self.sequence}"


def parse_document_id(text: str) -> DocumentId | LegacyDocumentId:
    return DocumentId.parse(text)
