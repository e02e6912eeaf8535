"""gateway.conf: the sample validates; every problem is found in one pass, named by section and
key, in both languages; secrets never leak; route patterns order by specificity."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from edxml.signature import WeakPolicy
from edxml.xmlsafe import Limits
from gateway.calendar import OfficeCalendar
from gateway.config import (
    Config,
    ConfigError,
    OcspConfig,
    Problem,
    RoutePattern,
    SignaturePolicy,
    Transport,
    load,
    parse_duration,
    parse_size,
)

SAMPLE = Path(__file__).parents[1] / "gateway.conf"
TOKEN = "s3cret-Token-0123456789abcdef"
OTHER_TOKEN = "another-Token-9876543210zyxwvu"

# Every file a full configuration below names, relative to its directory.
FILES = (
    "data/pki/node.pem",
    "data/pki/node.key",
    "data/pki/root.pem",
    "data/pki/a.key",
    "data/pki/a.pem",
    "data/pki/b.key",
    "data/pki/b.pem",
)

BASE = """\
[node]
name = test node
data_dir = data
office_listen = tcp:0:interface=127.0.0.1
exchange_listen = tcp:0:interface=127.0.0.1
office_url = http://127.0.0.1:8440/office
exchange_url = https://127.0.0.1:8443/exchange
tls_cert = data/pki/node.pem
tls_key = data/pki/node.key
tls_ca = data/pki/root.pem

[agency:000.00.00.H23]
name = UBND tỉnh Hà Nam
signing_key = data/pki/a.key
signing_cert = data/pki/a.pem

[agency:000.00.01.H23]
name = Văn phòng UBND tỉnh Hà Nam
signing_key = data/pki/b.key
signing_cert = data/pki/b.pem

[office:dev]
token_file = data/office.token
organ_ids = 000.00.00.H23, 000.00.01.H23

[route:local]
transport = local

[trust]
roots = data/pki/*.pem
"""


def make_dir(test: SynchronousTestCase) -> Path:
    base = Path(test.mktemp()).resolve()
    for name in FILES:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("PEM\n")
    (base / "data/office.token").write_text(TOKEN + "\n")
    return base


def write(base: Path, text: str, name: str = "gateway.conf") -> Path:
    path = base / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(test: SynchronousTestCase, path: Path, **kwargs: object) -> tuple[Problem, ...]:
    error = test.assertRaises(ConfigError, load, path, **kwargs)
    return error.problems


def where(problems: tuple[Problem, ...]) -> set[tuple[str, str | None]]:
    return {(p.section, p.key) for p in problems}


class SampleTests(SynchronousTestCase):
    def test_the_committed_sample_validates_without_its_files(self) -> None:
        config = load(SAMPLE, check_files=False)
        self.assertEqual([a.organ_id for a in config.agencies], ["000.00.00.H23", "000.00.01.H23"])
        self.assertEqual(config.node.data_dir, SAMPLE.parent / "data")
        self.assertIn("127.0.0.1", config.node.office_listen)
        self.assertIn("127.0.0.1", config.node.exchange_listen)
        self.assertEqual([r.name for r in config.routes_for("000.00.01.H23")], ["local"])
        soap = [r for r in config.routes if r.transport is Transport.SOAP]
        self.assertEqual(len(soap), 1)
        self.assertEqual(config.offices[0].organ_ids, ("000.00.00.H23", "000.00.01.H23"))
        self.assertIsNone(config.offices[0].token)  # in a file that was not read
        self.assertEqual(config.warnings, ())

    def test_the_samples_commented_hub_route_works_uncommented(self) -> None:
        text = SAMPLE.read_text()
        start = text.index("# [route:hub]")
        end = text.index("\n\n", start)
        block = "\n".join(
            line[2:]
            for line in text[start:end].splitlines()
            if re.match(r"# (\[route:|[a-z_]+ = )", line)
        ).replace("token_file = /etc/edxml-gateway/hub.token", "token_env = HUB_TOKEN")
        hub_token = "aHViLXRva2VuLTAxMjM0NTY3ODlhYmNk"
        base = Path(self.mktemp())
        base.mkdir()
        conf = write(base, text[:start] + block + text[end:])
        config = load(conf, check_files=False, environ={"HUB_TOKEN": hub_token})
        [route] = [r for r in config.routes if r.transport is Transport.EDOC_HUB]
        self.assertEqual((route.name, route.account), ("hub", "000.00.00.H23"))
        assert route.secret is not None
        self.assertEqual(route.secret.reveal(), hub_token)
        self.assertNotIn(hub_token, repr(route))
        self.assertEqual((route.pull_interval, route.directory_sync), (30.0, 86400.0))
        self.assertEqual([r.name for r in config.routes_for("000.01.00.H40")][:1], ["hub"])

    def test_the_sample_loads_once_its_files_exist(self) -> None:
        base = Path(self.mktemp()).resolve()
        base.mkdir()
        conf = base / "gateway.conf"
        shutil.copy(SAMPLE, conf)
        self.assertRaises(ConfigError, load, conf)  # nothing generated yet
        for match in re.finditer(r"^\w+ = (data/\S+)$", SAMPLE.read_text(), re.MULTILINE):
            target = base / match[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(TOKEN if target.name == "office.token" else "PEM\n")
        config = load(conf)
        office = config.office_for_token(TOKEN)
        assert office is not None
        self.assertEqual(office.name, "dev")
        self.assertEqual(config.limits.xml_limits(), Limits())
        self.assertEqual(config.retry.schedule, (30.0, 120.0, 600.0, 3600.0, 21600.0))
        self.assertEqual(config.trust.expand(config.trust.roots), (base / "data/pki/root.pem",))


class ValueTests(SynchronousTestCase):
    def test_a_full_configuration_reads_into_value_objects(self) -> None:
        base = make_dir(self)
        config = load(write(base, BASE))
        self.assertIsInstance(config, Config)
        self.assertEqual(config.node.tls.cert, base / "data/pki/node.pem")
        self.assertIsNone(config.node.organ_id)
        # A local route without organ_ids serves every hosted agency.
        self.assertEqual(config.routes[0].organ_ids, ("000.00.00.H23", "000.00.01.H23"))
        self.assertEqual(config.calendar.office_hours[0], (dt.time(7, 30), dt.time(11, 30)))
        self.assertEqual(config.calendar.workdays, frozenset(range(5)))
        self.assertEqual(config.trust.weak_algorithms, WeakPolicy.WARN)
        self.assertEqual(config.trust.ocsp, OcspConfig(enabled=True, timeout=5.0, retry_after=60.0))
        self.assertEqual(config.retry.max_attempts, 6)
        self.assertEqual(len(config.trust.expand(config.trust.roots)), 4)

    def test_ocsp_settings(self) -> None:
        base = make_dir(self)
        text = section_edit(
            BASE, "trust", "ocsp = off\nocsp_timeout = 3\nocsp_hosts = OCSP.ca.gov.vn, ocsp2.vn"
        )
        ocsp = load(write(base, text)).trust.ocsp
        self.assertEqual(ocsp, OcspConfig(False, 3.0, 60.0, ("ocsp.ca.gov.vn", "ocsp2.vn")))

    def test_relative_paths_resolve_against_the_config_directory_not_the_cwd(self) -> None:
        base = make_dir(self)
        conf_dir = base / "etc"
        conf_dir.mkdir()
        text = BASE.replace("data/", "../data/").replace("= data\n", "= ../data\n")
        config = load(write(conf_dir, text))
        self.assertEqual(config.node.data_dir, base / "data")
        self.assertEqual(config.agencies[0].signing_key, base / "data/pki/a.key")
        self.assertEqual(config.offices[0].token_source, f"file:{base / 'data/office.token'}")
        self.assertEqual(config.trust.roots, (str(base / "data/pki/*.pem"),))

    def test_durations_sizes_and_rates(self) -> None:
        self.assertEqual(parse_duration("30s"), 30.0)
        self.assertEqual(parse_duration("2m"), 120.0)
        self.assertEqual(parse_duration("1h"), 3600.0)
        self.assertEqual(parse_duration("500ms"), 0.5)
        self.assertEqual(parse_size("150MB"), 150 * 1024 * 1024)
        self.assertEqual(parse_size("64kb"), 65536)
        self.assertEqual(parse_size("1GiB"), 1 << 30)
        self.assertEqual(parse_size("512"), 512)
        self.assertEqual(parse_duration("10y"), 10 * 365 * 86400.0)
        for bad in ("30", "2 minutes", "-1s", "1w"):
            self.assertRaises(ValueError, parse_duration, bad)
        for bad in ("1.5MB", "MB", "10TB"):
            self.assertRaises(ValueError, parse_size, bad)
        base = make_dir(self)
        text = BASE + (
            "\n[limits]\nmax_envelope_bytes = 10MB\nmax_depth = 20\nmax_elements = 5000\n"
            "office_rate = 600/min\nexchange_rate = 0\n"
            "\n[retry]\nschedule = 1s, 2m\njitter = 0.1\n"
        )
        config = load(write(base, text))
        self.assertEqual(config.limits.xml_limits(), Limits(10 << 20, 20, 5000))
        self.assertEqual(config.limits.office_rate, 10.0)
        self.assertEqual(config.limits.exchange_rate, 0.0)
        self.assertEqual(config.retry.schedule, (1.0, 120.0))
        self.assertEqual(config.retry.max_attempts, 3)
        self.assertAlmostEqual(config.retry.delay(1, draw=0.0), 0.9)
        self.assertAlmostEqual(config.retry.delay(2, draw=0.5), 120.0)
        self.assertAlmostEqual(config.retry.delay(9, draw=1.0), 132.0)  # last step repeats

    def test_calendar_workdays_holidays_and_make_up_days(self) -> None:
        base = make_dir(self)
        text = BASE + (
            "\n[calendar]\noffice_hours = 08:00-12:00\nworkdays = mon-fri\n"
            "holidays = 2027-02-05..2027-02-08, 2027-09-02\nextra_workdays = 2027-02-13\n"
            "public_holidays = none\n"
        )
        config = load(write(base, text))
        self.assertEqual(config.calendar.office_hours, ((dt.time(8), dt.time(12)),))
        calendar = OfficeCalendar(config.calendar)
        self.assertFalse(calendar.is_working_day(dt.date(2027, 2, 8)))  # a Monday off for Tết
        self.assertTrue(calendar.is_working_day(dt.date(2027, 2, 9)))
        self.assertTrue(calendar.is_working_day(dt.date(2027, 2, 13)))  # a Saturday worked
        self.assertFalse(calendar.is_working_day(dt.date(2027, 2, 14)))

    def test_an_agency_keeps_its_own_office_hours(self) -> None:
        base = make_dir(self)
        text = section_edit(
            BASE,
            "agency:000.00.01.H23",
            "office_hours = 07:00-11:00, 13:00-16:30\nworkdays = mon-sat",
        )
        config = load(write(base, text))
        own = config.calendar_for("000.00.01.H23")
        self.assertEqual(
            own.office_hours, ((dt.time(7), dt.time(11)), (dt.time(13), dt.time(16, 30)))
        )
        self.assertEqual(own.workdays, frozenset(range(6)))
        self.assertEqual(config.calendar_for("000.00.00.H23"), config.calendar)
        self.assertEqual(config.calendar_for("000.00.00.G22"), config.calendar)


def section_edit(text: str, section: str, edit: str) -> str:
    """Append `edit` lines to [section] (added at the end when absent)."""
    header = f"[{section}]\n"
    if header in text:
        return text.replace(header, header + edit + "\n", 1)
    return text + f"\n{header}{edit}\n"


class ErrorTests(SynchronousTestCase):
    def assertProblem(
        self, text: str, section: str, key: str | None, *, check_files: bool = True
    ) -> Problem:
        base = make_dir(self)
        problems = problems_of(self, write(base, text), check_files=check_files)
        self.assertIn((section, key), where(problems), [str(p) for p in problems])
        problem = next(p for p in problems if (p.section, p.key) == (section, key))
        self.assertIn(f"[{section}]", problem.message_en)
        self.assertIn("expected", problem.message_en)
        self.assertIn("cần", problem.message_vi)
        return problem

    def test_each_kind_of_error_names_its_section_and_key(self) -> None:
        cases: list[tuple[str, str, str | None]] = [
            (BASE + "\n[nodes]\nname = x\n", "nodes", None),
            (BASE + "\n[agency:]\nname = x\n", "agency:", None),
            (section_edit(BASE, "node", "nmae = typo"), "node", "nmae"),
            (BASE.replace("name = test node\n", ""), "node", "name"),
            (BASE.replace("office_url = http://127.0.0.1:8440/office\n", ""), "node", "office_url"),
            (BASE.replace("tcp:0:interface=127.0.0.1\n", "tcp:port\n", 1), "node", "office_listen"),
            (
                BASE.replace("exchange_listen = tcp:0", "exchange_listen = ssl:0"),
                "node",
                "exchange_listen",
            ),
            (
                BASE.replace("https://127.0.0.1:8443", "http://127.0.0.1:8443"),
                "node",
                "exchange_url",
            ),
            (section_edit(BASE, "node", "organ_id = 000 00 00 H23"), "node", "organ_id"),
            (
                BASE + "\n[agency:H23 tỉnh]\nname = x\nsigning_key = data/pki/a.key\n"
                "signing_cert = data/pki/a.pem\n",
                "agency:H23 tỉnh",
                None,
            ),
            (
                BASE.replace("signing_key = data/pki/b.key\n", ""),
                "agency:000.00.01.H23",
                "signing_key",
            ),
            (
                BASE.replace("data/pki/b.pem", "data/pki/missing.pem"),
                "agency:000.00.01.H23",
                "signing_cert",
            ),
            (
                BASE.replace("000.00.00.H23, 000.00.01.H23", "000.00.00.H23, 000.00.02.H23"),
                "office:dev",
                "organ_ids",
            ),
            (
                BASE.replace("token_file = data/office.token", "token_file = data/none.token"),
                "office:dev",
                "token_file",
            ),
            (
                BASE.replace("token_file = data/office.token", "token_env = NO_SUCH_VARIABLE_X"),
                "office:dev",
                "token_env",
            ),
            (section_edit(BASE, "office:dev", "token_env = HOME"), "office:dev", "token_env"),
            (BASE.replace("token_file = data/office.token\n", ""), "office:dev", "token_file"),
            (section_edit(BASE, "office:dev", "push_url = ftp://x"), "office:dev", "push_url"),
            (
                section_edit(BASE, "office:dev", "client_cert_fingerprint = ab:cd"),
                "office:dev",
                "client_cert_fingerprint",
            ),
            (
                section_edit(BASE, "route:local", "transport = carrier-pigeon").replace(
                    "transport = local\n", ""
                ),
                "route:local",
                "transport",
            ),
            (BASE + "\n[route:axis]\ntransport = vxp\norgan_ids = *\n", "route:axis", "system_id"),
            (
                BASE + "\n[route:axis]\ntransport = vxp\nurl = http://a/x\nsystem_id = s\n"
                "secret = short\norgan_ids = *\n",
                "route:axis",
                "secret",
            ),
            (
                BASE + "\n[route:axis]\ntransport = vxp\nurl = http://a/x\nsystem_id = s\n"
                "secret_env = NOT_SET_ANYWHERE_42\norgan_ids = *\npull_interval = often\n",
                "route:axis",
                "pull_interval",
            ),
            (
                BASE + "\n[route:hub]\ntransport = edoc-hub\norgan_ids = *\nurl = http://h/x\n"
                "organ_id = 000.00.77.H23\ntoken_env = NOT_SET_ANYWHERE_42\n",
                "route:hub",
                "organ_id",
            ),
            (
                BASE + "\n[route:p]\ntransport = soap\nurl = https://p/x\norgan_ids = 000.*2.H40\n",
                "route:p",
                "organ_ids",
            ),
            (
                BASE + "\n[route:p]\ntransport = soap\nurl = http://p/x\norgan_ids = *.H40\n",
                "route:p",
                "url",
            ),
            (BASE + "\n[route:p]\ntransport = soap\norgan_ids = *.H40\n", "route:p", "url"),
            (BASE + "\n[route:p]\ntransport = soap\nurl = https://p/x\n", "route:p", "organ_ids"),
            (
                BASE + "\n[route:p]\ntransport = soap\nurl = https://p/x\norgan_ids = *.H40\n"
                "max_concurrency = 0\n",
                "route:p",
                "max_concurrency",
            ),
            (
                BASE + "\n[route:p]\ntransport = soap\nurl = https://p/x\norgan_ids = *.H40\n"
                "require_envelope_signature = maybe\n",
                "route:p",
                "require_envelope_signature",
            ),
            (
                BASE + "\n[route:p]\ntransport = soap\nurl = https://p/x\norgan_ids = *.H40\n"
                "tls_cert = data/pki/node.pem\n",
                "route:p",
                "tls_key",
            ),
            (
                BASE + "\n[route:p]\ntransport = soap\nurl = https://p/x\norgan_ids = *.H40\n"
                "\n[route:q]\ntransport = soap\nurl = https://q/x\norgan_ids = *.H40\n",
                "route:q",
                "organ_ids",
            ),
            (section_edit(BASE, "route:local", "url = https://x/y"), "route:local", "url"),
            (
                section_edit(BASE, "route:local", "organ_ids = 000.00.00.H23"),
                "agency:000.00.01.H23",
                None,
            ),
            (BASE.replace("roots = data/pki/*.pem", "roots = certs/roots/*.pem"), "trust", "roots"),
            (section_edit(BASE, "trust", "weak_algorithms = ignore"), "trust", "weak_algorithms"),
            (section_edit(BASE, "trust", "ocsp = sometimes"), "trust", "ocsp"),
            (section_edit(BASE, "trust", "ocsp_timeout = 0"), "trust", "ocsp_timeout"),
            (section_edit(BASE, "trust", "ocsp_retry_after = -1"), "trust", "ocsp_retry_after"),
            (
                section_edit(BASE, "calendar", "office_hours = 13:30-17:00, 07:30-11:30"),
                "calendar",
                "office_hours",
            ),
            (section_edit(BASE, "calendar", "workdays = monday-friday"), "calendar", "workdays"),
            (section_edit(BASE, "calendar", "holidays = 2027-02-30"), "calendar", "holidays"),
            (
                section_edit(BASE, "limits", "max_envelope_bytes = lots"),
                "limits",
                "max_envelope_bytes",
            ),
            (section_edit(BASE, "limits", "office_rate = fast"), "limits", "office_rate"),
            (section_edit(BASE, "retry", "schedule = 30s, soon"), "retry", "schedule"),
            (section_edit(BASE, "retry", "jitter = 2"), "retry", "jitter"),
            (BASE.replace("[node]\n", "[node]\nname = twice\n"), "node", "name"),
        ]
        for text, section, key in cases:
            self.assertProblem(text, section, key)

    def test_a_missing_node_section(self) -> None:
        text = BASE.split("[agency:000.00.00.H23]")[1]
        self.assertProblem("[agency:000.00.00.H23]" + text, "node", None)

    def test_data_dir_must_exist_unless_files_are_not_checked(self) -> None:
        text = BASE.replace("data_dir = data", "data_dir = nowhere")
        self.assertProblem(text, "node", "data_dir")
        base = make_dir(self)
        config = load(write(base, text), check_files=False)
        self.assertEqual(config.node.data_dir, base / "nowhere")

    def test_many_errors_are_all_reported_in_one_pass(self) -> None:
        text = (
            BASE.replace("name = test node\n", "")
            .replace("exchange_listen = tcp:0", "exchange_listen = ssl:0")
            .replace("data/pki/a.key", "data/pki/none.key")
            .replace("000.00.00.H23, 000.00.01.H23", "000.00.00.H23, 000.00.09.H23")
            + "\n[route:axis]\ntransport = edoc-hub\norgan_ids = *\nurl = http://127.0.0.1/x\n"
            + "\n[retry]\nschedule = often\nmax_atempts = 3\n"
            + "\n[extra]\n"
        )
        base = make_dir(self)
        error = self.assertRaises(ConfigError, load, write(base, text))
        expected = {
            ("node", "name"),
            ("node", "exchange_listen"),
            ("agency:000.00.00.H23", "signing_key"),
            ("office:dev", "organ_ids"),
            ("route:axis", "organ_id"),
            ("route:axis", "token_file"),
            ("retry", "schedule"),
            ("retry", "max_atempts"),
            ("extra", None),
        }
        self.assertEqual(where(error.problems), expected)
        message = str(error)
        self.assertIn("9 problem(s)", message)
        for section, key in expected:
            self.assertIn(f"[{section}]" + (f" {key}" if key else ""), message)
        self.assertIn("the hub token of that OrganId", message)
        self.assertIn("mã truy cập trục của cơ quan đó", message)

    def test_an_unreadable_file(self) -> None:
        error = self.assertRaises(ConfigError, load, Path(self.mktemp()) / "none.conf")
        self.assertEqual(len(error.problems), 1)
        self.assertIn("readable UTF-8 file", str(error))


class SecretTests(SynchronousTestCase):
    def test_a_vxp_route_reads_its_secret_and_warns_about_plain_http(self) -> None:
        base = make_dir(self)
        secret = "vxp-secret-0123456789abcdef"
        (base / "vxp.secret").write_text(secret + "\n")
        route = (
            "\n[route:national]\ntransport = vxp\nurl = http://vxp.example.gov.vn/XrdAdapter/adapter"
            "\nsystem_id = sys.h23\nsecret_file = vxp.secret\norgan_ids = *\n"
            "pull_interval = off\ndirectory_sync = 24h\nmax_clock_skew = 30s\n"
        )
        config = load(write(base, BASE + route))
        [national] = [r for r in config.routes if r.name == "national"]
        assert national.secret is not None
        self.assertEqual(national.secret.reveal(), secret)
        self.assertEqual(
            (national.system_id, national.pull_interval, national.directory_sync),
            ("sys.h23", None, 86400.0),
        )
        self.assertEqual(national.max_clock_skew, 30.0)
        self.assertNotIn(secret, repr(national))
        self.assertEqual(where(config.warnings), {("route:national", "url")})
        # On loopback (the simulator) plain http is no warning.
        local = load(write(base, BASE + route.replace("vxp.example.gov.vn", "127.0.0.1:8099")))
        self.assertEqual(local.warnings, ())

    def test_archive_and_retention(self) -> None:
        base = make_dir(self)
        text = BASE + (
            "\n[archive]\nafter = 30d\nmax_messages = 500\ninterval = off\n"
            "\n[retention]\nin_delivered = 10y\nout_accepted = 365d\nin_rejected = forever\n"
        )
        config = load(write(base, text))
        self.assertEqual(
            (config.archive.after, config.archive.max_messages, config.archive.interval),
            (30 * 86400.0, 500, None),
        )
        self.assertEqual(config.retention.period("in", "delivered"), 10 * 365 * 86400.0)
        self.assertEqual(config.retention.period("out", "accepted"), 365 * 86400.0)
        self.assertIsNone(config.retention.period("in", "rejected"))
        self.assertIsNone(config.retention.period("out", "recalled"))
        error = self.assertRaises(
            ConfigError, load, write(base, BASE + "\n[retention]\nin_delivered = soon\nkeep = 1\n")
        )
        self.assertEqual(
            where(error.problems), {("retention", "in_delivered"), ("retention", "keep")}
        )

    def test_paper_keywords_are_phrases(self) -> None:
        base = make_dir(self)
        text = BASE + "\n[policy]\npaper_keywords = tài chính, tổ chức cán bộ , khiếu nại\n"
        config = load(write(base, text))
        self.assertEqual(config.policy.paper_keywords, ("tài chính", "tổ chức cán bộ", "khiếu nại"))

    def test_a_relay_needs_its_organ_id(self) -> None:
        base = make_dir(self)
        error = self.assertRaises(
            ConfigError, load, write(base, BASE.replace("[node]\n", "[node]\nrelay = on\n"))
        )
        self.assertIn(("node", "relay"), where(error.problems))

    def test_secrets_never_appear_in_objects_or_errors(self) -> None:
        base = make_dir(self)
        text = BASE.replace("token_file = data/office.token", f"token = {TOKEN}")
        config = load(write(base, text))
        office = config.offices[0]
        assert office.token is not None
        self.assertEqual(office.token.reveal(), TOKEN)
        for shown in (repr(config), str(config), repr(office), str(office.token)):
            self.assertNotIn(TOKEN, shown)
            self.assertNotIn(TOKEN[:8], shown)
        # Inline works but warns, without the value.
        self.assertEqual(where(config.warnings), {("office:dev", "token")})
        self.assertNotIn(TOKEN, str(config.warnings[0]))

        # Next to other errors; as a too-short token; as a typo'd key; doubled.
        short = "short-secret-1"
        texts = [
            text.replace("name = test node\n", ""),
            BASE.replace("token_file = data/office.token", f"token = {short}"),
            BASE.replace("token_file = data/office.token", f"tokn = {TOKEN}"),
            section_edit(BASE, "office:dev", f"token = {TOKEN}"),
            text + f"\n[office:two]\ntoken = {TOKEN}\norgan_ids = 000.00.00.H23\n",
        ]
        for bad in texts:
            error = self.assertRaises(ConfigError, load, write(base, bad))
            rendered = str(error) + repr(error.problems)
            self.assertNotIn(TOKEN, rendered)
            self.assertNotIn(short, rendered)

    def test_token_from_a_file_or_an_environment_variable(self) -> None:
        base = make_dir(self)
        config = load(write(base, BASE))
        self.assertEqual(config.offices[0].token_source, f"file:{base / 'data/office.token'}")
        self.assertIs(config.office_for_token(TOKEN), config.offices[0])  # newline stripped
        self.assertIsNone(config.office_for_token(TOKEN + "x"))
        self.assertIsNone(config.office_for_token(""))

        text = BASE.replace("token_file = data/office.token", "token_env = GW_TOKEN") + (
            "\n[office:other]\ntoken_env = GW_OTHER\norgan_ids = 000.00.01.H23\n"
        )
        environ = {"GW_TOKEN": TOKEN, "GW_OTHER": OTHER_TOKEN}
        config = load(write(base, text), environ=environ)
        self.assertEqual(config.offices[0].token_source, "env:GW_TOKEN")
        other = config.office_for_token(OTHER_TOKEN)
        assert other is not None
        self.assertEqual(other.name, "other")
        self.assertTrue(other.may_act_for("000.00.01.H23"))
        self.assertFalse(other.may_act_for("000.00.00.H23"))
        self.assertEqual(config.warnings, ())

        # The same secret for two credentials would make the office ambiguous.
        error = self.assertRaises(
            ConfigError, load, write(base, text), environ={"GW_TOKEN": TOKEN, "GW_OTHER": TOKEN}
        )
        self.assertEqual(where(error.problems), {("office:other", "token")})

    def test_client_certificate_credentials_need_office_tls_with_a_ca(self) -> None:
        base = make_dir(self)
        fingerprint = "AB:" * 31 + "AB"
        text = section_edit(BASE, "office:dev", f"client_cert_fingerprint = {fingerprint}")
        error = self.assertRaises(ConfigError, load, write(base, text))
        self.assertEqual(where(error.problems), {("office:dev", "client_cert_fingerprint")})
        text = section_edit(
            text,
            "node",
            "office_tls_cert = data/pki/node.pem\noffice_tls_key = data/pki/node.key\n"
            "office_tls_ca = data/pki/root.pem",
        )
        config = load(write(base, text))
        self.assertIs(config.office_for_fingerprint(fingerprint.lower()), config.offices[0])
        self.assertEqual(config.offices[0].client_cert_fingerprint, "ab" * 32)


class RouteTests(SynchronousTestCase):
    def test_patterns_match_whole_segments(self) -> None:
        province = RoutePattern.parse("000.00.*.H23")
        self.assertTrue(province.match("000.00.01.H23"))
        self.assertFalse(province.match("000.00.01.H24"))
        self.assertFalse(province.match("000.00.01.H234"))
        ministry = RoutePattern.parse("*.G22")
        self.assertTrue(ministry.match("000.00.00.G22"))
        self.assertTrue(ministry.match("000.01.05.G22"))
        self.assertFalse(ministry.match("000.00.00.G220"))
        self.assertFalse(ministry.match("G22"))
        self.assertTrue(RoutePattern.parse("*").match("VN:GOV:000.00.00.G22"))
        exact = RoutePattern.parse("000.00.00.H23")
        self.assertTrue(exact.match("000.00.00.H23"))
        self.assertFalse(exact.match("000.00.00.H230"))
        for bad in ("H2*", "000..*", "000.00.00.H23 ", "*.G22!", ""):
            self.assertRaises(ValueError, RoutePattern.parse, bad)

    def test_the_most_specific_pattern_wins(self) -> None:
        ordered = ["000.00.01.H23", "000.00.*.H23", "*.00.*.H23", "*.H23", "*"]
        specificity = [RoutePattern.parse(p).specificity for p in ordered]
        self.assertEqual(specificity, sorted(specificity, reverse=True))

        base = make_dir(self)
        text = BASE.replace("000.00.00.H23, 000.00.01.H23", "000.00.00.H23") + (
            "\n[route:axis]\ntransport = soap\nurl = https://axis.example/x\norgan_ids = *\n"
            "\n[route:province]\ntransport = soap\nurl = https://p.example/x\n"
            "organ_ids = *.H40\nmax_concurrency = 2\ntimeout = 5s\nweak_algorithms = reject\n"
            "require_envelope_signature = optional\n"
            "\n[route:department]\ntransport = soap\nurl = https://d.example/x\n"
            "organ_ids = 000.00.*.H40, 000.00.07.H41\n"
        )
        config = load(write(base, text))

        def names(organ_id: str) -> list[str]:
            return [r.name for r in config.routes_for(organ_id)]

        self.assertEqual(names("000.00.05.H40"), ["department", "province", "axis"])
        self.assertEqual(names("000.01.05.H40"), ["province", "axis"])
        self.assertEqual(names("000.00.07.H41"), ["department", "axis"])
        self.assertEqual(names("000.00.00.G22"), ["axis"])
        self.assertEqual(names("000.00.01.H23")[0], "local")
        province = config.routes_for("000.01.05.H40")[0]
        self.assertEqual(province.max_concurrency, 2)
        self.assertEqual(province.timeout, 5.0)
        self.assertEqual(province.weak_algorithms, WeakPolicy.REJECT)
        self.assertEqual(province.require_envelope_signature, SignaturePolicy.OPTIONAL)
        # Without its own tls_*, a soap route presents the node's certificate.
        self.assertEqual(province.tls, config.node.tls)


class PeerPinningTests(SynchronousTestCase):
    def test_peer_fingerprints_pin_the_exchange_face_to_known_nodes(self) -> None:
        base = make_dir(self)
        fp = "AB:" * 31 + "CD"
        text = BASE + (
            "\n[route:province]\ntransport = soap\nurl = https://p.example/x\n"
            f"organ_ids = *.H40\npeer_fingerprints = {fp}\n"
        )
        config = load(write(base, text))
        known, names = config.known_peers()
        normal = fp.replace(":", "").lower()
        self.assertEqual(known, frozenset({normal}))
        self.assertEqual(names, {normal: "province"})

    def test_without_pins_any_node_under_tls_ca_is_accepted(self) -> None:
        config = load(write(make_dir(self), BASE))
        self.assertEqual(config.known_peers(), (None, {}))

    def test_a_bad_fingerprint_is_a_problem(self) -> None:
        base = make_dir(self)
        text = BASE + (
            "\n[route:province]\ntransport = soap\nurl = https://p.example/x\n"
            "organ_ids = *.H40\npeer_fingerprints = not-a-fingerprint\n"
        )
        problems = problems_of(self, write(base, text))
        self.assertIn(("route:province", "peer_fingerprints"), where(problems))
