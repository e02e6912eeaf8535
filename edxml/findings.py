"""Findings: what the library noticed about a document, each under a stable code.

A finding is data, not an exception: the tolerant reader and the rules collect them so that a
flawed real-world envelope is described, not crashed on. Each code carries its severity, the
gateway fault it maps to when it refuses a document, and its message in English and Vietnamese.
Modules declare their codes next to the code that raises them; the registry lists them all.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs


class Severity(enum.Enum):
    ERROR = "error"  # the document is refused
    WARNING = "warning"  # accepted, but somebody should look
    INFO = "info"  # noted (a tolerated deviation)


class Fault(enum.Enum):
    """The typed faults of design.md §6 that a refusing finding maps to."""

    SCHEMA_INVALID = "SchemaInvalid"
    RULE_VIOLATION = "RuleViolation"
    SIGNATURE_INVALID = "SignatureInvalid"
    UNTRUSTED_SIGNER = "UntrustedSigner"
    SENDER_MISMATCH = "SenderMismatch"
    UNKNOWN_RECIPIENT = "UnknownRecipient"
    SECRET_DOCUMENT = "SecretDocument"
    UNSUPPORTED_ATTACHMENT = "UnsupportedAttachment"
    TOO_LARGE = "TooLarge"


_REGISTRY: dict[str, FindingCode] = {}


@attrs.frozen
class FindingCode:
    """A kind of finding. Messages are str.format templates over the finding's params."""

    code: str
    severity: Severity
    en: str
    vi: str
    fault: Fault | None = None

    def __attrs_post_init__(self) -> None:
        known = _REGISTRY.get(self.code)
        if known is not None and known != self:
            raise ValueError(f"finding code {self.code} declared twice differently")
        _REGISTRY[self.code] = self

    def __call__(self, path: str | None = None, **params: Any) -> Finding:
        return Finding(
            code=self.code,
            severity=self.severity,
            message_en=self.en.format(**params),
            message_vi=self.vi.format(**params),
            path=path,
            params={k: str(v) for k, v in params.items()},
            fault=self.fault,
        )


@attrs.frozen
class Finding:
    code: str
    severity: Severity
    message_en: str
    message_vi: str
    path: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    fault: Fault | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message_en": self.message_en,
            "message_vi": self.message_vi,
            "path": self.path,
            "fault": self.fault.value if self.fault else None,
        }


def registry() -> Mapping[str, FindingCode]:
    """Every finding code declared so far (import the modules first)."""
    return dict(_REGISTRY)


def has_errors(findings: tuple[Finding, ...] | list[Finding]) -> bool:
    return any(f.is_error for f in findings)
