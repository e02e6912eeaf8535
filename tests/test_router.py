"""The router: hosted agencies stay local, else the most specific pattern, else a typed fault."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gateway.config import loads
from gateway.router import Router
from gateway.soap import FaultCode, GatewayFault

CONFIG = """
[node]
name = router test
data_dir = .
office_listen = tcp:0
office_url = http://127.0.0.1:1/office
exchange_listen = tcp:0
exchange_url = https://127.0.0.1:2/exchange
tls_cert = x.pem
tls_key = x.key
tls_ca = ca.pem

[agency:000.00.00.H23]
name = UBND tỉnh Hà Nam
signing_key = a.key
signing_cert = a.pem

[route:local]
transport = local

[route:everyone]
transport = soap
url = https://127.0.0.1:3/exchange
organ_ids = *

[route:province]
transport = soap
url = https://127.0.0.1:4/exchange
organ_ids = *.H23

[route:vpcp]
transport = soap
url = https://127.0.0.1:5/exchange
organ_ids = 000.00.00.G22

[route:ministries]
transport = soap
url = https://127.0.0.1:6/exchange
organ_ids = 000.00.*.G22
"""

NO_DEFAULT = CONFIG.replace("organ_ids = *\n", "organ_ids = *.G09\n")


def router(text: str = CONFIG) -> Router:
    return Router(loads(text, base_dir=Path("."), environ={}, check_files=False))


class RouterTests(SynchronousTestCase):
    def test_hosted_agency_is_local_even_under_a_broader_pattern(self) -> None:
        # `*.H23` and `*` both match; a hosted agency's documents never leave the node.
        self.assertEqual(router().route_for("000.00.00.H23").name, "local")

    def test_most_specific_pattern_wins(self) -> None:
        r = router()
        self.assertEqual(r.route_for("000.00.01.H23").name, "province")
        self.assertEqual(r.route_for("000.00.00.G09").name, "everyone")

    def test_exact_code_beats_patterns(self) -> None:
        r = router()
        self.assertEqual(r.route_for("000.00.00.G22").name, "vpcp")
        self.assertEqual(r.route_for("000.00.07.G22").name, "ministries")

    def test_no_route_is_unknown_recipient_naming_the_organ_id(self) -> None:
        with self.assertRaises(GatewayFault) as caught:
            router(NO_DEFAULT).route_for("000.00.00.H40")
        fault = caught.exception
        self.assertIs(fault.code, FaultCode.UNKNOWN_RECIPIENT)
        self.assertIn("000.00.00.H40", fault.text_en)
        self.assertIn("000.00.00.H40", fault.text_vi)
        self.assertNotEqual(fault.text_en, fault.text_vi)
