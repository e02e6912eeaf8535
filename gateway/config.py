"""`gateway.conf`: the node's configuration, read and validated in one pass before anything starts.

An INI file (configparser, no interpolation, no inline comments, no DEFAULT section). Every
problem found is collected, with its section, key, what was found and what is expected in English
and Vietnamese, and raised together as one `ConfigError`: an administrator fixes the whole file at
once. Unknown sections and keys are errors, so a typo never passes silently.

Relative paths resolve against the directory of the configuration file. Durations are written
`500ms`, `30s`, `2m`, `1h`, `1d`; sizes `512`, `64KB`, `150MB`, `1GB` (binary multiples: 1 KB =
1024 bytes, matching `edxml.xmlsafe.Limits`).

Secrets (office tokens) may be inline, in a file (`token_file`) or in an environment variable
(`token_env`); inline works but warns. A secret is held in a `Secret`, whose repr and str hide it,
and never appears in a `Problem`.

The exchange face always runs mutual TLS: `exchange_listen` is a plain `tcp:` endpoint and the TLS
material comes from `[node]` `tls_cert`, `tls_key`, `tls_ca`, so a client certificate can never be
left optional by a forgotten endpoint argument. The office face is plain HTTP (for loopback) unless
`office_tls_cert` and `office_tls_key` are given; `office_tls_ca` adds client-certificate checking,
which `client_cert_fingerprint` credentials need.
"""

from __future__ import annotations

import configparser
import datetime as dt
import enum
import fnmatch
import glob
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs

from edxml import organid
from edxml.model import VN_TZ
from edxml.signature import WeakPolicy
from edxml.xmlsafe import Limits

__all__ = [
    "AgencyConfig",
    "CalendarConfig",
    "Config",
    "ConfigError",
    "LimitsConfig",
    "NodeConfig",
    "OcspConfig",
    "OfficeConfig",
    "Problem",
    "RetryConfig",
    "RouteConfig",
    "RoutePattern",
    "Secret",
    "SignaturePolicy",
    "Switch",
    "TlsConfig",
    "Transport",
    "TrustConfig",
    "load",
    "loads",
    "parse_duration",
    "parse_size",
]

MIN_TOKEN_LENGTH: Final = 16
_HIDDEN: Final = "(hidden)"
_FOUND_MAX: Final = 80


# --- problems ----------------------------------------------------------------------------------


@attrs.frozen
class Problem:
    """One thing wrong (or, in `Config.warnings`, risky) in the file.

    `key` is None when the problem is about a whole section; `found` is None when nothing was
    there, and never holds a secret.
    """

    section: str
    key: str | None
    found: str | None
    expected_en: str
    expected_vi: str
    found_vi: str | None = None  # when `found` is words rather than a quoted value

    @property
    def where(self) -> str:
        return f"[{self.section}]" + (f" {self.key}" if self.key else "")

    @property
    def message_en(self) -> str:
        found = "missing" if self.found is None else f"found {self.found}"
        return f"{self.where}: {found}; expected {self.expected_en}"

    @property
    def message_vi(self) -> str:
        if self.found_vi is not None:
            found = self.found_vi
        else:
            found = "thiếu" if self.found is None else f"giá trị {self.found}"
        return f"{self.where}: {found}; cần {self.expected_vi}"

    def __str__(self) -> str:
        return f"{self.message_en} / {self.message_vi}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists everything wrong, section by section."""

    code = "ConfigError"
    vi = "Tệp cấu hình không hợp lệ"

    def __init__(self, path: Path | None, problems: Iterable[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        where = str(path) if path is not None else "configuration"
        lines = [f"{where}: {len(self.problems)} problem(s) / {len(self.problems)} lỗi"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# --- secrets -----------------------------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class Secret:
    """A credential that must not reach a log, a repr or an error message."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        # Digests first: compare_digest is only constant-time for inputs of equal length.
        mine = hashlib.sha256(self._value.encode()).digest()
        theirs = hashlib.sha256(candidate.encode()).digest()
        return hmac.compare_digest(mine, theirs)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


# --- value objects -----------------------------------------------------------------------------


class Transport(enum.Enum):
    SOAP = "soap"  # our own exchange face on a peer node or axis
    VXP = "vxp"  # national axis REST (shared/docs/vxp.md): gateway.vxptransport
    LOCAL = "local"  # hosted on this node: no network hop
    EDOC_HUB = "edoc-hub"  # BKAV "eDoc" provincial SOAP hub (shared/docs/bkav_hub.md)


USABLE_TRANSPORTS: Final = frozenset(
    {Transport.SOAP, Transport.LOCAL, Transport.VXP, Transport.EDOC_HUB}
)


class SignaturePolicy(enum.Enum):
    REQUIRED = "required"
    OPTIONAL = "optional"


@attrs.frozen
class TlsConfig:
    """PEM files for one TLS side: our certificate chain, its key, and the CAs we accept."""

    cert: Path
    key: Path
    ca: Path | None = None


@attrs.frozen
class NodeConfig:
    name: str
    organ_id: str | None  # the node's own OrganId when it is an axis or agency node
    data_dir: Path
    office_listen: str  # Twisted server endpoint string, plain tcp: or unix:
    exchange_listen: str  # plain tcp:; TLS comes from `tls`
    office_url: str  # what office systems use to reach the office face
    exchange_url: str  # what other nodes use to reach the exchange face
    tls: TlsConfig  # the exchange face's mutual TLS (ca: the CAs whose clients are accepted)
    office_tls: TlsConfig | None = None
    # An axis role: envelopes and statuses for agencies not hosted here are forwarded along the
    # routes, with this node's TraceHeader (organ_id) appended; loops are refused.
    relay: bool = False

    @property
    def db_path(self) -> Path:
        return self.data_dir / "gateway.db"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"


@attrs.frozen
class AgencyConfig:
    organ_id: str
    name: str
    signing_key: Path
    signing_cert: Path
    # The agency's own office hours and working weekdays, where they differ from [calendar].
    office_hours: tuple[tuple[dt.time, dt.time], ...] | None = None
    workdays: frozenset[int] | None = None


@attrs.frozen
class OfficeConfig:
    """An office-system credential and the OrganIds it may act for."""

    name: str
    organ_ids: tuple[str, ...]
    token: Secret | None = attrs.field(default=None, repr=False)
    token_source: str | None = None  # "inline", "file:PATH" or "env:NAME"; never the token
    client_cert_fingerprint: str | None = None  # SHA-256, lower-case hex, no colons
    push_url: str | None = None

    def may_act_for(self, organ_id: str) -> bool:
        return organ_id in self.organ_ids


_PATTERN_SEGMENT = re.compile(r"^[0-9A-Za-z\-:_]+\Z")


@attrs.frozen
class RoutePattern:
    """An OrganId pattern: exact code, or dot-separated segments where `*` stands for one or more
    whole segments (`000.00.*.H23`, `*.G22`, `*`)."""

    text: str
    _regex: re.Pattern[str] = attrs.field(repr=False, eq=False)

    @classmethod
    def parse(cls, text: str) -> RoutePattern:
        """Raises ValueError with an English reason when `text` is not a pattern."""
        segments = text.split(".")
        if "*" not in segments:
            if not organid.is_valid(text):
                raise ValueError("not a valid OrganId")
            return cls(text, re.compile(re.escape(text) + r"\Z"))
        parts = []
        for segment in segments:
            if segment == "*":
                parts.append(r"[^.]+(?:\.[^.]+)*")
            elif _PATTERN_SEGMENT.match(segment):
                parts.append(re.escape(segment))
            else:
                raise ValueError("each segment must be a code part or a lone '*'")
        return cls(text, re.compile(r"\.".join(parts) + r"\Z"))

    @property
    def exact(self) -> bool:
        return "*" not in self.text.split(".")

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Larger is more specific: exact codes, then more literal segments, then longer ones."""
        literal = [s for s in self.text.split(".") if s != "*"]
        return (int(self.exact), len(literal), sum(len(s) for s in literal))

    def match(self, organ_id: str) -> bool:
        return self._regex.match(organ_id) is not None


@attrs.frozen
class RouteConfig:
    name: str
    transport: Transport
    patterns: tuple[RoutePattern, ...]
    url: str | None = None
    tls: TlsConfig | None = None  # client side of mutual TLS to this peer (soap)
    require_envelope_signature: SignaturePolicy = SignaturePolicy.REQUIRED
    weak_algorithms: WeakPolicy = WeakPolicy.WARN
    max_concurrency: int = 4
    timeout: float = 60.0  # seconds for one delivery attempt
    # SHA-256 of the peer node's TLS certificate(s): when any route names some, the exchange
    # face accepts only those nodes, not everyone whose certificate chains to tls_ca.
    peer_fingerprints: tuple[str, ...] = ()
    # vxp: the centre code the axis operator issued, its HMAC secret, and the pull loop.
    # edoc-hub: `account` the OrganId the hub knows us by, `secret` its token, the pull loop.
    system_id: str | None = None
    secret: Secret | None = attrs.field(default=None, repr=False)
    account: str | None = None
    pull_interval: float | None = 30.0  # seconds between inbox listings; None: no pull loop
    directory_sync: float | None = None  # seconds between agency-list syncs; None: off
    # R20: an axis whose clock is further off than this is a finding in `gateway status`.
    max_clock_skew: float = 120.0

    @property
    def organ_ids(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.patterns)

    def match(self, organ_id: str) -> bool:
        return any(p.match(organ_id) for p in self.patterns)

    def specificity_for(self, organ_id: str) -> tuple[int, int, int] | None:
        """The specificity of the most specific pattern matching `organ_id`, or None."""
        found = [p.specificity for p in self.patterns if p.match(organ_id)]
        return max(found) if found else None


class Switch(enum.Enum):
    ON = "on"
    OFF = "off"


@attrs.frozen
class OcspConfig:
    """Asking OCSP responders that trusted certificates name (see gateway.ocspclient)."""

    enabled: bool = True
    timeout: float = 5.0  # seconds for one responder's whole answer
    retry_after: float = 60.0  # seconds a responder that failed is not asked again
    hosts: tuple[str, ...] = ()  # only these responder hosts, when given (lower case)


@attrs.frozen
class TrustConfig:
    """Trust-store inputs. Each entry is an absolute path or glob; `expand` lists the files."""

    roots: tuple[str, ...] = ()
    intermediates: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()
    weak_algorithms: WeakPolicy = WeakPolicy.WARN
    ocsp: OcspConfig = attrs.field(factory=lambda: OcspConfig())

    @staticmethod
    def expand(patterns: Iterable[str]) -> tuple[Path, ...]:
        files: list[Path] = []
        for pattern in patterns:
            files += sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        return tuple(dict.fromkeys(files))


VIETNAM: Final = VN_TZ
_LOOPBACK: Final = ("127.0.0.1", "::1", "localhost")


class PublicHolidays(enum.Enum):
    VIETNAM = "vietnam"  # the `holidays` package's Vietnam calendar, then the overrides
    NONE = "none"  # only the configured holidays


@attrs.frozen
class CalendarConfig:
    """Office hours for the legal receipt time (R19): hours, working weekdays, day overrides."""

    office_hours: tuple[tuple[dt.time, dt.time], ...] = (
        (dt.time(7, 30), dt.time(11, 30)),
        (dt.time(13, 30), dt.time(17, 0)),
    )
    workdays: frozenset[int] = frozenset(range(5))  # date.weekday(): 0 = Monday
    holidays: frozenset[dt.date] = frozenset()  # workdays that are not worked
    extra_workdays: frozenset[dt.date] = frozenset()  # make-up days (a Saturday worked instead)
    timezone: dt.timezone = VIETNAM
    public_holidays: PublicHolidays = PublicHolidays.VIETNAM


@attrs.frozen
class LimitsConfig:
    max_envelope_bytes: int = 150 * 1024 * 1024
    max_depth: int = 48
    max_elements: int = 200_000
    office_rate: float = 0.0  # requests per second per office credential; 0 = unlimited
    exchange_rate: float = 0.0  # requests per second per peer node; 0 = unlimited

    def xml_limits(self) -> Limits:
        return Limits(
            max_bytes=self.max_envelope_bytes,
            max_depth=self.max_depth,
            max_elements=self.max_elements,
        )


@attrs.frozen
class RetryConfig:
    schedule: tuple[float, ...] = (30.0, 120.0, 600.0, 3600.0, 21600.0)  # seconds
    jitter: float = 0.2  # each delay is scaled by a factor drawn from [1 - jitter, 1 + jitter]
    max_attempts: int = 6

    def delay(self, failed_attempts: int, draw: float = 0.5) -> float:
        """Seconds to wait after `failed_attempts` (≥ 1) failures; `draw` in [0, 1) is the caller's
        random number, so that tests choose it. Past the schedule's end the last step repeats."""
        step = self.schedule[min(max(failed_attempts, 1), len(self.schedule)) - 1]
        return step * (1.0 - self.jitter + 2.0 * self.jitter * draw)


@attrs.frozen
class ArchiveConfig:
    """Sealed archive files of settled messages ([archive]; gateway.retention)."""

    dir: Path | None = None  # None: <data_dir>/archive
    after: float = 90 * 86400.0  # seconds a settled message stays live before it is archived
    max_messages: int = 10_000  # per archive file
    interval: float | None = 6 * 3600.0  # the daemon's pass; None: only `gateway archive run`


# What retention is kept per (direction, state): the keys of [retention].
RETENTION_KEYS: Final = (
    "in_received",
    "in_delivered",
    "in_rejected",
    "in_withdrawn",
    "out_accepted",
    "out_recalled",
)


@attrs.frozen
class RetentionConfig:
    """How long an archived message stays in the live store, per direction and state, in
    seconds from its arrival; None (the default, `forever`): never purged."""

    periods: tuple[tuple[str, float | None], ...] = tuple((k, None) for k in RETENTION_KEYS)

    def period(self, direction: str, state: str) -> float | None:
        return dict(self.periods).get(f"{direction}_{state}")


class UnknownAgencies(enum.Enum):
    REFUSE = "refuse"  # an agency missing from a non-empty directory (or ceased) is refused
    ALLOW = "allow"  # routes alone decide


@attrs.frozen
class PolicyConfig:
    """The regulation's configurable rules ([policy]). Patterns are shell-style (* ? [..])."""

    # R7: a paper copy also goes to these recipients (the Government, the ministries) …
    paper_recipients: tuple[str, ...] = ("000.00.00.G??",)
    # … and with a submission (Tờ trình, Báo cáo, Đề án, Dự án) to these (provincial UBND) …
    paper_submission_to: tuple[str, ...] = ("000.00.00.H??",)
    # … and for these matters named in the subject (finance, personnel, complaints).
    paper_keywords: tuple[str, ...] = (
        "tài chính",
        "ngân sách",
        "nhân sự",
        "tổ chức cán bộ",
        "khiếu nại",
        "tố cáo",
    )
    unknown_agencies: UnknownAgencies = UnknownAgencies.REFUSE

    @staticmethod
    def matches(patterns: Iterable[str], organ_id: str) -> bool:
        return any(fnmatch.fnmatchcase(organ_id, p) for p in patterns)


@attrs.frozen
class Config:
    path: Path | None
    node: NodeConfig
    agencies: tuple[AgencyConfig, ...] = ()
    offices: tuple[OfficeConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    trust: TrustConfig = TrustConfig()
    calendar: CalendarConfig = CalendarConfig()
    limits: LimitsConfig = LimitsConfig()
    retry: RetryConfig = RetryConfig()
    policy: PolicyConfig = PolicyConfig()
    archive: ArchiveConfig = ArchiveConfig()
    retention: RetentionConfig = RetentionConfig()
    # The bearer token Prometheus presents at /metrics of the office face; None: not served.
    metrics_token: Secret | None = attrs.field(default=None, repr=False)
    metrics_token_source: str | None = None  # as an office's token_source; never the token
    warnings: tuple[Problem, ...] = ()

    def agency(self, organ_id: str) -> AgencyConfig | None:
        return next((a for a in self.agencies if a.organ_id == organ_id), None)

    def hosts(self, organ_id: str) -> bool:
        return self.agency(organ_id) is not None

    def calendar_for(self, organ_id: str | None) -> CalendarConfig:
        """[calendar], with a hosted agency's own office hours and workdays where it has them."""
        agency = self.agency(organ_id) if organ_id is not None else None
        if agency is None:
            return self.calendar
        return attrs.evolve(
            self.calendar,
            office_hours=agency.office_hours or self.calendar.office_hours,
            workdays=agency.workdays or self.calendar.workdays,
        )

    def routes_for(self, organ_id: str) -> tuple[RouteConfig, ...]:
        """Routes that serve `organ_id`, the most specific pattern first (file order on ties)."""
        scored = [(r.specificity_for(organ_id), i, r) for i, r in enumerate(self.routes)]
        matching = [(s, i, r) for s, i, r in scored if s is not None]
        matching.sort(key=lambda t: (tuple(-x for x in t[0]), t[1]))
        return tuple(r for _, _, r in matching)

    def office_for_token(self, token: str) -> OfficeConfig | None:
        """The office whose token is `token`. Every credential is compared, so the time taken
        does not tell which one (or whether any) matched."""
        found: OfficeConfig | None = None
        for office in self.offices:
            if office.token is not None and office.token.matches(token):
                found = office
        return found

    def known_peers(self) -> tuple[frozenset[str] | None, dict[str, str]]:
        """Fingerprints the exchange face accepts (None: any node under tls_ca), and the route
        name each one belongs to, for the audit trail."""
        names = {fp: r.name for r in self.routes for fp in r.peer_fingerprints}
        return (frozenset(names) if names else None), names

    def office_for_fingerprint(self, fingerprint: str) -> OfficeConfig | None:
        wanted = _normal_fingerprint(fingerprint)
        return next((o for o in self.offices if o.client_cert_fingerprint == wanted), None)


# --- scalar parsers (also used by the CLI) -----------------------------------------------------

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|y)\Z")
# A year of retention is 365 days: the law counts years, and a day more is never a loss.
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "y": 31536000.0}
_SIZE = re.compile(r"^([0-9]+)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\Z")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
_RATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|m|min|h)\Z")
_RATE_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}\Z")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(text: str) -> float:
    """`30s` → 30.0 seconds; raises ValueError."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(text)
    return float(match[1]) * _DURATION_UNITS[match[2]]


def parse_size(text: str) -> int:
    """`150MB` → 157286400 bytes; raises ValueError."""
    match = _SIZE.match(text.strip().upper())
    if match is None:
        raise ValueError(text)
    unit = match[2].replace("IB", "B") if match[2] else None
    return int(match[1]) * _SIZE_UNITS[unit]


def _parse_rate(text: str) -> float:
    if text.strip() in ("0", "unlimited"):
        return 0.0
    match = _RATE.match(text.strip().lower())
    if match is None:
        raise ValueError(text)
    return float(match[1]) / _RATE_UNITS[match[2]]


def _normal_fingerprint(text: str) -> str:
    return text.strip().lower().replace(":", "")


def _split_list(text: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", text.strip()) if item]


def _shown(value: str) -> str:
    value = value if len(value) <= _FOUND_MAX else value[: _FOUND_MAX - 1] + "…"
    return repr(value)


# --- reading one section -----------------------------------------------------------------------

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


class _Section:
    """One section's keys; every read records what is wrong instead of raising."""

    def __init__(
        self,
        name: str,
        items: Mapping[str, str],
        allowed: Iterable[str],
        problems: list[Problem],
        base: Path,
    ) -> None:
        self.name = name
        self.items = dict(items)
        self.allowed = tuple(allowed)
        self.problems = problems
        self.base = base
        for key in self.items:
            if key not in self.allowed:
                self.problem(
                    key,
                    # A typo's value may be a secret: never shown.
                    "an unknown key",
                    "one of the keys " + ", ".join(self.allowed),
                    "một trong các khóa " + ", ".join(self.allowed),
                    "khóa không xác định",
                )

    def problem(
        self, key: str | None, found: str | None, en: str, vi: str, found_vi: str | None = None
    ) -> None:
        self.problems.append(Problem(self.name, key, found, en, vi, found_vi))

    def has(self, key: str) -> bool:
        return bool(self.items.get(key, "").strip())

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.items.get(key, "").strip()
        if value:
            return value
        if required:
            self.problem(key, None if key not in self.items else "''", "a value", "một giá trị")
        return None

    def convert(
        self,
        key: str,
        parse: Callable[[str], T],
        default: T,
        en: str,
        vi: str,
        *,
        required: bool = False,
    ) -> T:
        value = self.text(key, required=required)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            self.problem(key, _shown(value), en, vi)
            return default

    def integer(self, key: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        def parse(text: str) -> int:
            number = int(text)
            if number < low or (high is not None and number > high):
                raise ValueError(text)
            return number

        bounds = f"≥ {low}" if high is None else f"from {low} to {high}"
        bounds_vi = f"≥ {low}" if high is None else f"từ {low} đến {high}"
        return self.convert(
            key, parse, default, f"a whole number {bounds}", f"một số nguyên {bounds_vi}"
        )

    def choice(self, key: str, enum_type: type[E], default: E) -> E:
        return self.maybe_choice(key, enum_type) or default

    def maybe_choice(self, key: str, enum_type: type[E], *, required: bool = False) -> E | None:
        names = [str(m.value) for m in enum_type]

        def parse(text: str) -> E | None:
            return enum_type(text.lower())

        return self.convert(
            key,
            parse,
            None,
            "one of " + ", ".join(names),
            "một trong " + ", ".join(names),
            required=required,
        )

    def path(self, key: str, *, required: bool = False) -> Path | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        return (self.base / Path(value).expanduser()).resolve()

    def url(self, key: str, *, required: bool = False, https: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        parts = urlsplit(value)
        schemes = ("https",) if https else ("http", "https")
        if parts.scheme not in schemes or not parts.hostname:
            what = "an https:// URL" if https else "an http:// or https:// URL"
            what_vi = "một địa chỉ https://" if https else "một địa chỉ http:// hoặc https://"
            self.problem(key, _shown(value), what, what_vi)
            return None
        return value


# --- the whole file ----------------------------------------------------------------------------

_NODE_KEYS = (
    "name",
    "organ_id",
    "relay",
    "data_dir",
    "office_listen",
    "exchange_listen",
    "office_url",
    "exchange_url",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "office_tls_cert",
    "office_tls_key",
    "office_tls_ca",
)
_AGENCY_KEYS = ("name", "signing_key", "signing_cert", "office_hours", "workdays")
_OFFICE_KEYS = (
    "token",
    "token_file",
    "token_env",
    "client_cert_fingerprint",
    "organ_ids",
    "push_url",
)
_ROUTE_KEYS = (
    "transport",
    "url",
    "organ_ids",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "require_envelope_signature",
    "weak_algorithms",
    "max_concurrency",
    "timeout",
    "peer_fingerprints",
    "system_id",
    "secret",
    "secret_file",
    "secret_env",
    "pull_interval",
    "directory_sync",
    "max_clock_skew",
    "organ_id",
    "token",
    "token_file",
    "token_env",
)
_TRUST_KEYS = (
    "roots",
    "intermediates",
    "crls",
    "weak_algorithms",
    "ocsp",
    "ocsp_timeout",
    "ocsp_retry_after",
    "ocsp_hosts",
)
_CALENDAR_KEYS = ("office_hours", "workdays", "holidays", "extra_workdays", "public_holidays")
_LIMITS_KEYS = ("max_envelope_bytes", "max_depth", "max_elements", "office_rate", "exchange_rate")
_RETRY_KEYS = ("schedule", "jitter", "max_attempts")
_POLICY_KEYS = ("paper_recipients", "paper_submission_to", "paper_keywords", "unknown_agencies")
_METRICS_KEYS = ("token", "token_file", "token_env")
_ARCHIVE_KEYS = ("dir", "after", "max_messages", "interval")
_SINGLE_SECTIONS = (
    "node",
    "trust",
    "calendar",
    "limits",
    "retry",
    "policy",
    "metrics",
    "archive",
    "retention",
)
_PREFIXES = ("agency", "office", "route")


def load(
    path: Path, *, environ: Mapping[str, str] = os.environ, check_files: bool = True
) -> Config:
    """Read and validate `path`. Raises ConfigError listing every problem found.

    With `check_files=False` nothing but the configuration itself is read: referenced files
    (keys, certificates, token files, trust globs, data_dir) are not checked or opened, and
    tokens kept in files stay unknown (`token` None, `token_source` set).
    """
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(
            path,
            [
                Problem(
                    "-",
                    None,
                    f"{reason!r}",
                    "a readable UTF-8 file",
                    "một tệp UTF-8 đọc được",
                )
            ],
        ) from None
    return loads(text, base_dir=path.parent, environ=environ, check_files=check_files, path=path)


def loads(
    text: str,
    *,
    base_dir: Path,
    environ: Mapping[str, str] = os.environ,
    check_files: bool = True,
    path: Path | None = None,
) -> Config:
    """Like `load`, from text; relative paths resolve against `base_dir`."""
    parser = configparser.ConfigParser(
        interpolation=None,
        strict=True,
        empty_lines_in_values=False,
        # No DEFAULT magic: its keys would silently apply to every section.
        default_section="\x00",
    )
    try:
        parser.read_string(text, source=str(path or "<string>"))
    except configparser.Error as exc:
        raise ConfigError(path, [_syntax_problem(exc)]) from None
    return _Loader(parser, base_dir.expanduser().resolve(), environ, check_files, path).run()


def _syntax_problem(exc: configparser.Error) -> Problem:
    if isinstance(exc, configparser.DuplicateSectionError):
        return Problem(
            exc.section, None, f"line {exc.lineno}", "each section once", "mỗi mục chỉ một lần"
        )
    if isinstance(exc, configparser.DuplicateOptionError):
        return Problem(
            exc.section,
            exc.option,
            f"line {exc.lineno}",
            "each key once per section",
            "mỗi khóa chỉ một lần trong một mục",
        )
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return Problem(
            "-",
            None,
            f"line {exc.lineno}",
            "a [section] header before any key",
            "tiêu đề [mục] trước mọi khóa",
        )
    lines = getattr(exc, "errors", None) or []
    where = ", ".join(f"line {n}" for n, _ in lines) or "unreadable text"
    return Problem(
        "-", None, where, "key = value lines (INI syntax)", "các dòng khóa = giá trị (cú pháp INI)"
    )


class _Loader:
    def __init__(
        self,
        parser: configparser.ConfigParser,
        base: Path,
        environ: Mapping[str, str],
        check_files: bool,
        path: Path | None,
    ) -> None:
        self.parser = parser
        self.base = base
        self.environ = environ
        self.check_files = check_files
        self.path = path
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def section(self, name: str, allowed: Iterable[str]) -> _Section:
        items = self.parser[name] if self.parser.has_section(name) else {}
        return _Section(name, items, allowed, self.problems, self.base)

    def run(self) -> Config:
        agencies_sections: list[str] = []
        office_sections: list[str] = []
        route_sections: list[str] = []
        buckets = {"agency": agencies_sections, "office": office_sections, "route": route_sections}
        for name in self.parser.sections():
            prefix, colon, rest = name.partition(":")
            if not colon and name in _SINGLE_SECTIONS:
                continue
            if colon and prefix in _PREFIXES and rest.strip():
                buckets[prefix].append(name)
                continue
            self.problems.append(
                Problem(
                    name,
                    None,
                    "an unknown section",
                    "[node], [trust], [calendar], [limits], [retry], [policy], [metrics], "
                    "[agency:<OrganId>], [office:<name>] or [route:<name>]",
                    "một trong các mục [node], [trust], [calendar], [limits], [retry], [policy], "
                    "[metrics], "
                    "[agency:<mã định danh>], [office:<tên>], [route:<tên>]",
                    "mục không xác định",
                )
            )
        if not self.parser.has_section("node"):
            self.problems.append(
                Problem("node", None, None, "a [node] section", "mục [node] bắt buộc")
            )
        node = self.node()
        agencies = tuple(a for a in map(self.agency, agencies_sections) if a is not None)
        hosted = {a.organ_id for a in agencies}
        offices = tuple(o for o in (self.office(s, hosted) for s in office_sections) if o)
        trust = self.trust()
        routes = tuple(r for r in (self.route(s, hosted, trust, node) for s in route_sections) if r)
        self.cross_checks(node, offices, routes, hosted)
        calendar = self.calendar()
        limits = self.limits()
        retry = self.retry()
        policy = self.policy()
        archive = self.archive()
        retention = self.retention()
        metrics_token, metrics_source = self.secret(
            self.section("metrics", _METRICS_KEYS), "metrics"
        )
        if self.problems or node is None:
            raise ConfigError(self.path, self.problems)
        return Config(
            path=self.path,
            node=node,
            agencies=agencies,
            offices=offices,
            routes=routes,
            trust=trust,
            calendar=calendar,
            limits=limits,
            retry=retry,
            policy=policy,
            archive=archive,
            retention=retention,
            metrics_token=metrics_token,
            metrics_token_source=metrics_source,
            warnings=tuple(self.warnings),
        )

    # -- files --

    def existing_file(self, section: _Section, key: str, path: Path | None) -> None:
        if path is None or not self.check_files:
            return
        if not path.is_file():
            section.problem(
                key, _shown(str(path)), "an existing readable file", "một tệp có sẵn, đọc được"
            )

    def file_key(self, section: _Section, key: str, *, required: bool = False) -> Path | None:
        path = section.path(key, required=required)
        self.existing_file(section, key, path)
        return path

    def tls(self, section: _Section, prefix: str, *, required: bool) -> TlsConfig | None:
        cert = self.file_key(section, f"{prefix}tls_cert", required=required)
        key = self.file_key(section, f"{prefix}tls_key", required=required)
        ca = self.file_key(section, f"{prefix}tls_ca")
        if not required and (cert is None) != (key is None):
            missing = f"{prefix}tls_key" if key is None else f"{prefix}tls_cert"
            section.problem(
                missing,
                None,
                f"{prefix}tls_cert and {prefix}tls_key together",
                f"{prefix}tls_cert và {prefix}tls_key đi cùng nhau",
            )
        if cert is None or key is None:
            return None
        return TlsConfig(cert, key, ca)

    # -- sections --

    def node(self) -> NodeConfig | None:
        s = self.section("node", _NODE_KEYS)
        if not self.parser.has_section("node"):
            return None
        name = s.text("name", required=True)
        organ_id = s.text("organ_id")
        if organ_id is not None and not organid.is_valid(organ_id):
            s.problem(
                "organ_id",
                _shown(organ_id),
                "a valid OrganId (e.g. 000.00.00.H23)",
                "mã định danh cơ quan hợp lệ (ví dụ 000.00.00.H23)",
            )
            organ_id = None
        data_dir = s.path("data_dir") or (self.base / "data")
        if self.check_files and not data_dir.is_dir():
            s.problem(
                "data_dir",
                _shown(str(data_dir)),
                "an existing directory (gateway init)",
                "một thư mục có sẵn (gateway init)",
            )
        office_listen = self.endpoint(s, "office_listen", allow_unix=True)
        exchange_listen = self.endpoint(s, "exchange_listen", allow_unix=False)
        # Port 0 (any free port, as tests use) twice is not a clash.
        if (
            office_listen is not None
            and office_listen == exchange_listen
            and not re.match(r"^tcp6?:0(:|\Z)", office_listen)
        ):
            s.problem(
                "exchange_listen",
                _shown(exchange_listen),
                "a different endpoint from office_listen",
                "điểm lắng nghe khác office_listen",
            )
        tls = self.tls(s, "", required=True)
        office_tls = self.tls(s, "office_", required=False)
        office_url = s.url("office_url", required=True)
        exchange_url = s.url("exchange_url", required=True, https=True)
        if office_url and office_tls is None and urlsplit(office_url).scheme == "https":
            s.problem(
                "office_url",
                _shown(office_url),
                "http:// unless office_tls_cert and office_tls_key are set",
                "http:// nếu không đặt office_tls_cert và office_tls_key",
            )
        if name is None or office_listen is None or exchange_listen is None or tls is None:
            return None
        relay = s.choice("relay", Switch, Switch.OFF) is Switch.ON
        if relay and organ_id is None:
            s.problem(
                "relay",
                "on",
                "organ_id set too: a relay writes it into every envelope it forwards",
                "đặt cả organ_id: nút chuyển tiếp ghi mã này vào mọi gói tin nó chuyển",
            )
        if office_url is None or exchange_url is None:
            return None
        return NodeConfig(
            name,
            organ_id,
            data_dir,
            office_listen,
            exchange_listen,
            office_url,
            exchange_url,
            tls,
            office_tls,
            relay,
        )

    def endpoint(self, s: _Section, key: str, *, allow_unix: bool) -> str | None:
        value = s.text(key, required=True)
        if value is None:
            return None
        kind, _, rest = value.partition(":")
        args = rest.split(":")
        ok = False
        if kind in ("tcp", "tcp6") and args and args[0].isdigit() and int(args[0]) <= 65535:
            ok = all(
                a.partition("=")[0] in ("interface", "backlog") and a.partition("=")[2]
                for a in args[1:]
            )
        elif kind == "unix" and allow_unix:
            ok = bool(args[0])
        if ok:
            return value
        if kind == "ssl" and not allow_unix:
            en = "a plain tcp: endpoint; mutual TLS comes from tls_cert, tls_key and tls_ca"
            vi = "điểm tcp: thuần; TLS hai chiều lấy từ tls_cert, tls_key và tls_ca"
        elif kind == "ssl":
            en = "a plain tcp: or unix: endpoint; TLS comes from office_tls_cert and office_tls_key"
            vi = "điểm tcp: hoặc unix: thuần; TLS lấy từ office_tls_cert và office_tls_key"
        else:
            en = "a Twisted endpoint such as tcp:8443:interface=127.0.0.1" + (
                " or unix:/run/gateway.sock" if allow_unix else ""
            )
            vi = "điểm lắng nghe Twisted, ví dụ tcp:8443:interface=127.0.0.1"
        s.problem(key, _shown(value), en, vi)
        return None

    def agency(self, name: str) -> AgencyConfig | None:
        s = self.section(name, _AGENCY_KEYS)
        code = name.partition(":")[2].strip()
        valid = organid.is_valid(code)
        if not valid:
            s.problem(
                None,
                _shown(code),
                "[agency:<OrganId>] with a valid OrganId (e.g. 000.00.00.H23)",
                "[agency:<mã định danh>] với mã định danh hợp lệ (ví dụ 000.00.00.H23)",
            )
        label = s.text("name", required=True)
        key = self.file_key(s, "signing_key", required=True)
        cert = self.file_key(s, "signing_cert", required=True)
        hours = s.convert("office_hours", _parse_hours, None, _HOURS_EN, _HOURS_VI)
        workdays = s.convert("workdays", _parse_weekdays, None, _WEEKDAYS_EN, _WEEKDAYS_VI)
        if not valid or label is None or key is None or cert is None:
            return None
        return AgencyConfig(code, label, key, cert, hours, workdays)

    def organ_ids(self, s: _Section, hosted: set[str]) -> tuple[str, ...]:
        value = s.text("organ_ids", required=True)
        codes = _split_list(value or "")
        for code in codes:
            if code not in hosted:
                s.problem(
                    "organ_ids",
                    _shown(code),
                    "OrganIds of hosted agencies ([agency:<OrganId>] sections)",
                    "mã định danh của cơ quan được phục vụ "
                    "tại nút này (mục [agency:<mã định danh>])",
                )
        return tuple(dict.fromkeys(codes))

    def office(self, name: str, hosted: set[str]) -> OfficeConfig | None:
        s = self.section(name, _OFFICE_KEYS)
        label = name.partition(":")[2].strip()
        organ_ids = self.organ_ids(s, hosted)
        token, source = self.secret(s, name)
        sources = [k for k in ("token", "token_file", "token_env") if s.has(k)]
        fingerprint = s.text("client_cert_fingerprint")
        if fingerprint is not None:
            fingerprint = _normal_fingerprint(fingerprint)
            if not _FINGERPRINT.match(fingerprint):
                s.problem(
                    "client_cert_fingerprint",
                    _shown(fingerprint),
                    "a SHA-256 fingerprint: 64 hex digits, colons allowed",
                    "dấu vân tay SHA-256: 64 chữ số thập lục phân, cho phép dấu hai chấm",
                )
                fingerprint = None
        if not sources and not s.has("client_cert_fingerprint"):
            s.problem(
                "token_file",
                None,
                "a credential: token_file, token_env, token or client_cert_fingerprint",
                "một thông tin xác thực: token_file, token_env, token hoặc client_cert_fingerprint",
            )
        push_url = s.url("push_url")
        if push_url is not None and not sources:
            # The push is signed with the credential's token: a certificate alone signs nothing.
            s.problem(
                "push_url",
                _shown(push_url),
                "push_url with a token credential (token_file, token_env or token): pushes are"
                " signed with it",
                "push_url cùng mã truy cập (token_file, token_env hoặc token): thông báo đẩy"
                " được ký bằng mã đó",
            )
        # Signed, so not forged; but who waits for what is seen on the way.
        self.warn_plain_http(
            name,
            "push_url",
            push_url,
            "the notifications can be read on the way",
            "thông báo có thể bị đọc trên đường truyền",
        )
        return OfficeConfig(label, organ_ids, token, source, fingerprint, push_url)

    def warn_plain_http(
        self, name: str, key: str, url: str | None, risk_en: str, risk_vi: str
    ) -> None:
        """A warning for an http:// URL off loopback (it works, but travels in clear)."""
        if not url or not url.startswith("http://") or urlsplit(url).hostname in _LOOPBACK:
            return
        self.warnings.append(
            Problem(
                name,
                key,
                _shown(url),
                f"an https:// URL: over http:// {risk_en}",
                f"một địa chỉ https://: qua http:// {risk_vi}",
            )
        )

    def secret(
        self, s: _Section, name: str, stem: str = "token"
    ) -> tuple[Secret | None, str | None]:
        """A token from `token`, `token_file` or `token_env` of section `name` (or `secret`,
        `secret_file`, `secret_env` with that `stem`), and where it came from; every problem
        recorded."""
        inline, in_file, in_env = stem, f"{stem}_file", f"{stem}_env"
        sources = [k for k in (inline, in_file, in_env) if s.has(k)]
        token: Secret | None = None
        source: str | None = None
        if len(sources) > 1:
            for key in sources[1:]:
                s.problem(
                    key,
                    None,
                    f"only one of {inline}, {in_file}, {in_env}",
                    f"chỉ một trong {inline}, {in_file}, {in_env}",
                )
        elif sources == [inline]:
            token, source = self.token_value(s, inline, s.text(inline) or ""), "inline"
            self.warnings.append(
                Problem(
                    name,
                    inline,
                    None,
                    f"{in_file} or {in_env}: an inline secret ends up "
                    "in backups and version control",
                    f"{in_file} hoặc {in_env}: khóa bí mật "
                    "ghi trực tiếp sẽ lọt vào bản sao lưu và kho mã nguồn",
                )
            )
        elif sources == [in_file]:
            path = s.path(in_file)
            assert path is not None
            source = f"file:{path}"
            if self.check_files:
                try:
                    raw = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    s.problem(
                        in_file,
                        _shown(str(path)),
                        "a readable UTF-8 file holding the token",
                        "một tệp UTF-8 đọc được chứa mã truy cập",
                    )
                else:
                    token = self.token_value(s, in_file, raw)
        elif sources == [in_env]:
            variable = s.text(in_env) or ""
            source = f"env:{variable}"
            if variable not in self.environ:
                s.problem(
                    in_env,
                    _shown(variable),
                    "the name of a set environment variable",
                    "tên một biến môi trường đã được đặt",
                )
            else:
                token = self.token_value(s, in_env, self.environ[variable])
        return token, source

    def token_value(self, s: _Section, key: str, raw: str) -> Secret | None:
        value = raw.strip()
        if len(value) < MIN_TOKEN_LENGTH or any(c.isspace() for c in value):
            s.problem(
                key,
                _HIDDEN,
                f"a token of at least {MIN_TOKEN_LENGTH} characters without spaces",
                f"mã truy cập dài ít nhất {MIN_TOKEN_LENGTH} ký tự, không có khoảng trắng",
            )
            return None
        return Secret(value)

    def route(
        self, name: str, hosted: set[str], trust: TrustConfig, node: NodeConfig | None
    ) -> RouteConfig | None:
        s = self.section(name, _ROUTE_KEYS)
        transport = s.maybe_choice("transport", Transport, required=True)
        if transport is not None and transport not in USABLE_TRANSPORTS:
            s.problem(
                "transport",
                _shown(transport.value),
                f"soap, vxp, edoc-hub or local: the {transport.value} transport is not"
                " implemented yet",
                f"soap, vxp, edoc-hub hoặc local: phương thức {transport.value} chưa được hỗ trợ",
            )
        patterns: list[RoutePattern] = []
        raw_patterns = _split_list(s.text("organ_ids") or "")
        for text in raw_patterns:
            try:
                patterns.append(RoutePattern.parse(text))
            except ValueError:
                s.problem(
                    "organ_ids",
                    _shown(text),
                    "OrganIds or patterns such as 000.00.*.H23, "
                    "*.G22 or * (a '*' stands for whole segments)",
                    "mã định danh hoặc mẫu như 000.00.*.H23, *.G22, * ('*' thay cho cả nhóm)",
                )
        if transport is Transport.SOAP:
            url = s.url("url", https=True)
        elif transport in (Transport.VXP, Transport.EDOC_HUB):
            url = s.url("url", required=True)
            # The vxp HMAC covers the request headers only, the hub's token nothing but itself
            # (sent in clear over http): answers and uploads travel unauthenticated; the
            # envelope's seal still guards content.
            self.warn_plain_http(
                name,
                "url",
                url,
                "the axis' answers are not protected",
                "phản hồi của trục không được bảo vệ",
            )
        else:
            url = s.text("url")
        tls = self.tls(s, "", required=False)
        if transport is Transport.LOCAL:
            if not raw_patterns:
                patterns = [RoutePattern.parse(code) for code in sorted(hosted)]
            for p in patterns:
                if p.exact and p.text not in hosted:
                    s.problem(
                        "organ_ids",
                        _shown(p.text),
                        "OrganIds of hosted agencies for a local route",
                        "mã định danh của cơ quan được phục vụ tại nút này cho tuyến local",
                    )
            for key in ("url", "tls_cert", "tls_key", "tls_ca"):
                if s.has(key):
                    s.problem(
                        key,
                        _shown(s.items[key].strip()),
                        "nothing: a local route has no peer",
                        "để trống: tuyến local không có nút đối tác",
                    )
            tls = None
        elif transport is Transport.SOAP:
            if not raw_patterns:
                s.problem(
                    "organ_ids",
                    None,
                    "OrganIds or patterns this route serves",
                    "mã định danh hoặc mẫu mà tuyến này phục vụ",
                )
            if s.text("url") is None:
                s.problem(
                    "url",
                    None,
                    "the peer's exchange face https:// URL",
                    "địa chỉ https:// cổng trao đổi của nút đối tác",
                )
            if tls is None and node is not None:
                # Same client identity as our own exchange face unless the peer wants another.
                tls = node.tls
        elif transport in (Transport.VXP, Transport.EDOC_HUB) and not raw_patterns:
            s.problem(
                "organ_ids",
                None,
                "OrganIds or patterns the axis serves (e.g. * for every other agency)",
                "mã định danh hoặc mẫu mà trục phục vụ (ví dụ * cho mọi cơ quan khác)",
            )
        signature = s.choice(
            "require_envelope_signature", SignaturePolicy, SignaturePolicy.REQUIRED
        )
        weak = s.choice("weak_algorithms", WeakPolicy, trust.weak_algorithms)
        concurrency = s.integer("max_concurrency", 4, low=1, high=1024)
        timeout = s.convert(
            "timeout",
            _positive(parse_duration),
            60.0,
            "a duration such as 30s or 2m",
            "thời lượng như 30s hoặc 2m",
        )
        if transport is Transport.VXP:
            vxp = self.vxp(s, name)
        elif transport is Transport.EDOC_HUB:
            vxp = self.edoc_hub(s, name, hosted)
        else:
            vxp = {}
        peers: list[str] = []
        for raw in _split_list(s.text("peer_fingerprints") or ""):
            value = _normal_fingerprint(raw)
            if _FINGERPRINT.match(value):
                peers.append(value)
            else:
                s.problem(
                    "peer_fingerprints",
                    _shown(raw),
                    "SHA-256 fingerprints of the peer's TLS certificate: 64 hex digits each",
                    "dấu vân tay SHA-256 của chứng thư TLS của nút đối tác: mỗi cái 64 chữ số hex",
                )
        if transport is None or (not patterns and transport is not Transport.LOCAL):
            return None
        return RouteConfig(
            name.partition(":")[2].strip(),
            transport,
            tuple(patterns),
            url,
            tls,
            signature,
            weak,
            concurrency,
            timeout,
            tuple(peers),
            **vxp,
        )

    def vxp(self, s: _Section, name: str) -> dict[str, Any]:
        """The national axis keys of a vxp route (shared/docs/vxp.md §2)."""
        system_id = s.text("system_id", required=True)
        if system_id is not None and (
            not system_id.isascii() or any(c.isspace() for c in system_id)
        ):
            s.problem(
                "system_id",
                _shown(system_id),
                "the centre code the axis operator issued (ASCII, no spaces)",
                "mã trung tâm do đơn vị vận hành trục cấp (ASCII, không khoảng trắng)",
            )
        secret, _ = self.secret(s, name, stem="secret")
        if secret is None and not any(s.has(k) for k in ("secret", "secret_file", "secret_env")):
            s.problem(
                "secret_file",
                None,
                "the HMAC secret of the system: secret_file or secret_env",
                "khóa bí mật HMAC của hệ thống: secret_file hoặc secret_env",
            )

        return {
            "system_id": system_id,
            "secret": secret,
            "pull_interval": _every(s, "pull_interval", 30.0),
            "directory_sync": _every(s, "directory_sync", None),
            "max_clock_skew": _max_clock_skew(s),
        }

    def edoc_hub(self, s: _Section, name: str, hosted: set[str]) -> dict[str, Any]:
        """The keys of an edoc-hub route (shared/docs/bkav_hub.md §3): the OrganId the hub
        knows us by (a hosted agency: the hub notifies documents to it) and its token."""
        account = s.text("organ_id", required=True)
        if account is not None and account not in hosted:
            s.problem(
                "organ_id",
                _shown(account),
                "the OrganId of an agency hosted on this node (the hub's account)",
                "mã định danh của một cơ quan được phục vụ tại nút này (tài khoản trên trục)",
            )
        token, _ = self.secret(s, name, stem="token")
        if token is None and not any(s.has(k) for k in ("token", "token_file", "token_env")):
            s.problem(
                "token_file",
                None,
                "the hub token of that OrganId: token_file or token_env",
                "mã truy cập trục của cơ quan đó: token_file hoặc token_env",
            )
        return {
            "account": account,
            "secret": token,
            "pull_interval": _every(s, "pull_interval", 30.0),
            "directory_sync": _every(s, "directory_sync", None),
            "max_clock_skew": _max_clock_skew(s),
        }

    def cross_checks(
        self,
        node: NodeConfig | None,
        offices: tuple[OfficeConfig, ...],
        routes: tuple[RouteConfig, ...],
        hosted: set[str],
    ) -> None:
        seen: dict[str, str] = {}
        for route in routes:
            for pattern in route.patterns:
                other = seen.setdefault(pattern.text, route.name)
                if other != route.name:
                    self.problems.append(
                        Problem(
                            f"route:{route.name}",
                            "organ_ids",
                            _shown(pattern.text),
                            f"a pattern not already used by [route:{other}]",
                            f"mẫu chưa dùng ở [route:{other}]",
                        )
                    )
        for code in sorted(hosted):
            if not any(r.transport is Transport.LOCAL and r.match(code) for r in routes):
                self.problems.append(
                    Problem(
                        f"agency:{code}",
                        None,
                        "no local route serving it",
                        "a [route:<name>] with transport = local covering it",
                        "một mục [route:<tên>] có transport = local bao gồm cơ quan này",
                        "không có tuyến local nào phục vụ cơ quan này",
                    )
                )
        tokens = [o for o in offices if o.token is not None]
        for i, office in enumerate(tokens):
            assert office.token is not None
            if any(office.token.matches(o.token.reveal()) for o in tokens[:i] if o.token):
                self.problems.append(
                    Problem(
                        f"office:{office.name}",
                        "token",
                        _HIDDEN,
                        "a token no other office uses",
                        "mã truy cập không trùng với văn phòng khác",
                    )
                )
        if node is not None and (node.office_tls is None or node.office_tls.ca is None):
            for office in offices:
                if office.client_cert_fingerprint is not None:
                    self.problems.append(
                        Problem(
                            f"office:{office.name}",
                            "client_cert_fingerprint",
                            None,
                            "[node] office_tls_cert, office_tls_key and office_tls_ca, "
                            "without which no client certificate is asked for",
                            "[node] office_tls_cert, office_tls_key và office_tls_ca để "
                            "yêu cầu chứng thư số của máy khách",
                        )
                    )

    def trust(self) -> TrustConfig:
        s = self.section("trust", _TRUST_KEYS)
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("roots", "intermediates", "crls"):
            entries = []
            for item in _split_list(s.text(key) or ""):
                pattern = str((self.base / Path(item).expanduser()).resolve())
                entries.append(pattern)
                if self.check_files and not TrustConfig.expand([pattern]):
                    s.problem(
                        key,
                        _shown(item),
                        "a file or a glob matching at least one file",
                        "một tệp hoặc mẫu khớp ít nhất một tệp",
                    )
            lists[key] = tuple(entries)
        weak = s.choice("weak_algorithms", WeakPolicy, WeakPolicy.WARN)
        ocsp = OcspConfig(
            enabled=s.choice("ocsp", Switch, Switch.ON) is Switch.ON,
            timeout=float(s.integer("ocsp_timeout", 5, low=1, high=120)),
            retry_after=float(s.integer("ocsp_retry_after", 60, low=0, high=86400)),
            hosts=tuple(h.lower() for h in _split_list(s.text("ocsp_hosts") or "")),
        )
        return TrustConfig(lists["roots"], lists["intermediates"], lists["crls"], weak, ocsp)

    def policy(self) -> PolicyConfig:
        s = self.section("policy", _POLICY_KEYS)
        d = PolicyConfig()

        def patterns(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            text = s.text(key)
            if text is None:
                return default
            items = tuple(_split_list(text))
            for item in items:
                if not re.fullmatch(r"[0-9A-Za-z.\-:_*?\[\]]{1,35}", item):
                    s.problem(
                        key,
                        _shown(item),
                        "OrganIds or shell-style patterns such as 000.00.00.G??",
                        "mã định danh hoặc mẫu như 000.00.00.G??",
                    )
            return items

        keywords = s.text("paper_keywords")
        return PolicyConfig(
            paper_recipients=patterns("paper_recipients", d.paper_recipients),
            paper_submission_to=patterns("paper_submission_to", d.paper_submission_to),
            # Keywords are phrases ("tổ chức cán bộ"): only commas separate them.
            paper_keywords=tuple(k.strip() for k in keywords.split(",") if k.strip())
            if keywords is not None
            else d.paper_keywords,
            unknown_agencies=s.choice("unknown_agencies", UnknownAgencies, d.unknown_agencies),
        )

    def calendar(self) -> CalendarConfig:
        s = self.section("calendar", _CALENDAR_KEYS)
        default = CalendarConfig()
        hours = s.convert("office_hours", _parse_hours, default.office_hours, _HOURS_EN, _HOURS_VI)
        workdays = s.convert(
            "workdays", _parse_weekdays, default.workdays, _WEEKDAYS_EN, _WEEKDAYS_VI
        )
        public = s.choice("public_holidays", PublicHolidays, PublicHolidays.VIETNAM)
        days_en = "dates YYYY-MM-DD or ranges YYYY-MM-DD..YYYY-MM-DD, separated by commas"
        days_vi = "các ngày YYYY-MM-DD hoặc khoảng YYYY-MM-DD..YYYY-MM-DD, cách nhau bởi dấu phẩy"
        holidays: frozenset[dt.date] = s.convert(
            "holidays", _parse_dates, frozenset(), days_en, days_vi
        )
        extra: frozenset[dt.date] = s.convert(
            "extra_workdays", _parse_dates, frozenset(), days_en, days_vi
        )
        both = holidays & extra
        if both:
            s.problem(
                "extra_workdays",
                _shown(min(both).isoformat()),
                "dates not also listed in holidays",
                "ngày không đồng thời nằm trong holidays",
            )
        return CalendarConfig(hours, workdays, holidays, extra, public_holidays=public)

    def limits(self) -> LimitsConfig:
        s = self.section("limits", _LIMITS_KEYS)
        d = LimitsConfig()
        size = s.convert(
            "max_envelope_bytes",
            _positive(parse_size),
            d.max_envelope_bytes,
            "a size such as 150MB",
            "kích thước như 150MB",
        )
        depth = s.integer("max_depth", d.max_depth, low=8, high=1000)
        elements = s.integer("max_elements", d.max_elements, low=100)
        rate_en, rate_vi = (
            "a rate such as 50/s or 600/min, or 0",
            "tốc độ như 50/s, 600/min, hoặc 0",
        )
        office_rate = s.convert("office_rate", _parse_rate, d.office_rate, rate_en, rate_vi)
        exchange_rate = s.convert("exchange_rate", _parse_rate, d.exchange_rate, rate_en, rate_vi)
        return LimitsConfig(size, depth, elements, office_rate, exchange_rate)

    def archive(self) -> ArchiveConfig:
        s = self.section("archive", _ARCHIVE_KEYS)
        d = ArchiveConfig()
        after = s.convert(
            "after",
            _positive(parse_duration),
            d.after,
            "a duration such as 90d",
            "thời lượng như 90d",
        )
        interval: float | None = d.interval
        raw = s.text("interval")
        if raw is not None and raw.strip().lower() == "off":
            interval = None
        else:
            interval = s.convert(
                "interval",
                _positive(parse_duration),
                d.interval,
                "a duration such as 6h, or off",
                "thời lượng như 6h, hoặc off",
            )
        return ArchiveConfig(
            dir=s.path("dir"),
            after=after,
            max_messages=s.integer("max_messages", d.max_messages, low=1, high=1_000_000),
            interval=interval,
        )

    def retention(self) -> RetentionConfig:
        s = self.section("retention", RETENTION_KEYS)
        periods: list[tuple[str, float | None]] = []
        for key in RETENTION_KEYS:
            raw = s.text(key)
            if raw is None or raw.strip().lower() == "forever":
                periods.append((key, None))
                continue
            periods.append(
                (
                    key,
                    s.convert(
                        key,
                        _positive(parse_duration),
                        None,
                        "a duration such as 10y or 365d, or forever",
                        "thời lượng như 10y hoặc 365d, hoặc forever",
                    ),
                )
            )
        return RetentionConfig(tuple(periods))

    def retry(self) -> RetryConfig:
        s = self.section("retry", _RETRY_KEYS)
        d = RetryConfig()
        schedule = s.convert(
            "schedule",
            _parse_schedule,
            d.schedule,
            "durations separated by commas, such as 30s, 2m, 10m, 1h, 6h",
            "các thời lượng cách nhau bởi dấu phẩy, như 30s, 2m, 10m, 1h, 6h",
        )
        jitter = s.convert(
            "jitter",
            _parse_fraction,
            d.jitter,
            "a fraction from 0 to 0.5",
            "một tỉ lệ từ 0 đến 0.5",
        )
        attempts = s.integer("max_attempts", len(schedule) + 1, low=1, high=1000)
        return RetryConfig(schedule, jitter, attempts)


def _max_clock_skew(s: _Section) -> float:
    found: float = s.convert(
        "max_clock_skew",
        _positive(parse_duration),
        120.0,
        "a duration such as 2m",
        "thời lượng như 2m",
    )
    return found


def _every(s: _Section, key: str, default: float | None) -> float | None:
    """A loop's interval: a duration, or `off` (None)."""
    raw = s.text(key)
    if raw is not None and raw.strip().lower() == "off":
        return None
    found: float | None = s.convert(
        key,
        _positive(parse_duration),
        default,
        "a duration such as 30s or 24h, or off",
        "thời lượng như 30s hoặc 24h, hoặc off",
    )
    return found


def _positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    def positive(text: str) -> T:
        value = parse(text)
        if not value > 0:  # type: ignore[operator]
            raise ValueError(text)
        return value

    return positive


def _parse_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 0.5:
        raise ValueError(text)
    return value


def _parse_schedule(text: str) -> tuple[float, ...]:
    steps = tuple(_positive(parse_duration)(item) for item in text.split(","))
    if not steps:
        raise ValueError(text)
    return steps


def _parse_hours(text: str) -> tuple[tuple[dt.time, dt.time], ...]:
    ranges: list[tuple[dt.time, dt.time]] = []
    for item in text.split(","):
        start_text, dash, end_text = item.strip().partition("-")
        if not dash:
            raise ValueError(text)
        start = dt.time.fromisoformat(start_text.strip())
        end = dt.time.fromisoformat(end_text.strip())
        if not start < end or (ranges and not ranges[-1][1] <= start):
            raise ValueError(text)
        ranges.append((start, end))
    return tuple(ranges)


_HOURS_EN: Final = "ordered, non-overlapping HH:MM-HH:MM ranges separated by commas"
_HOURS_VI: Final = "các khoảng HH:MM-HH:MM tăng dần, không chồng nhau, cách nhau bởi dấu phẩy"
_WEEKDAYS_EN: Final = "weekdays such as mon-fri or mon,tue,wed,thu,fri,sat"
_WEEKDAYS_VI: Final = "các ngày trong tuần như mon-fri hoặc mon,tue,wed,thu,fri,sat"


def _parse_weekdays(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in _split_list(text.lower()):
        first, dash, last = item.partition("-")
        start = _WEEKDAYS.index(first)  # ValueError for an unknown name
        end = _WEEKDAYS.index(last) if dash else start
        if end < start:
            raise ValueError(text)
        days.update(range(start, end + 1))
    if not days:
        raise ValueError(text)
    return frozenset(days)


def _parse_dates(text: str) -> frozenset[dt.date]:
    dates: set[dt.date] = set()
    for item in _split_list(text):
        first, dots, last = item.partition("..")
        start = dt.date.fromisoformat(first)
        end = dt.date.fromisoformat(last) if dots else start
        if end < start or (end - start).days > 366:
            raise ValueError(text)
        dates.update(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    return frozenset(dates)
