"""OrganId forms and the agency tree; DocumentId parsing, formatting and its typed errors."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml.errors import EdxmlError
from edxml.findings import Fault
from edxml.model import Code, Organization
from edxml.organid import (
    ClassicOrganId,
    DocumentId,
    DocumentIdInvalid,
    LegacyDocumentId,
    OrganIdForm,
    classify,
    find_organ_id,
    is_valid,
    parse_document_id,
)

classic_ids = st.builds(
    lambda a, b, c, letter, n: f"{a:03d}.{b:02d}.{c:02d}.{letter}{n:02d}",
    st.integers(0, 999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.integers(0, 99),
)
extended_ids = st.text(
    alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-:_.",
    min_size=1,
    max_size=35,
).filter(lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s)
notations = st.text(alphabet="ABCDĐEGHKLMNOPQSTUVXYabcdđegh-&.", min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and "," not in s
)


class ClassifyTests(SynchronousTestCase):
    def test_classic_codes_from_the_axis(self) -> None:
        for organ_id in ("000.00.00.G22", "000.00.11.H53", "000.00.01.A53", "000.01.01.H08"):
            self.assertIs(classify(organ_id), OrganIdForm.CLASSIC, organ_id)
            self.assertTrue(is_valid(organ_id))

    def test_extended_codes_of_sd1_2022(self) -> None:
        for organ_id in (
            "H23.DN.001",
            "0101234567-001",
            "VN:GOV:000.00.00.G22",
            "1.000656.000.00.00.H29",
            "a" * 35,
            "000.00.00.g22",  # lower-case letter: not classic, still a valid extended code
            "X",
        ):
            self.assertIs(classify(organ_id), OrganIdForm.EXTENDED, organ_id)

    def test_not_organ_ids(self) -> None:
        for organ_id in (
            "",
            "a" * 36,
            ".000.00.00.G22",
            "000.00.00.G22.",
            "000..00.G22",
            "000.00.00.G22 ",
            " 000.00.00.G22",
            "000.00.00.Đ22",
            "000,00,00,G22",
            "H23/001",
        ):
            self.assertIsNone(classify(organ_id), repr(organ_id))
            self.assertFalse(is_valid(organ_id))

    @given(classic_ids)
    def test_every_classic_code_is_classic(self, organ_id: str) -> None:
        self.assertEqual(len(organ_id), 13)
        self.assertIs(classify(organ_id), OrganIdForm.CLASSIC)

    @given(extended_ids)
    def test_extended_alphabet_is_accepted(self, organ_id: str) -> None:
        self.assertIsNotNone(classify(organ_id))

    def test_find_organ_id_in_a_longer_text(self) -> None:
        for text, expected in (
            ("000.00.00.G22", "000.00.00.G22"),
            ("Văn phòng UBND tỉnh (000.00.00.H23)", "000.00.00.H23"),
            ("VN:GOV:000.01.02.h23, bản sao", "000.01.02.H23"),  # upper-cased
            ("CCCD:001090000001 / 000.00.00.A01 / 000.00.00.B02", "000.00.00.A01"),
            ("1.000656.000.00.00.H29", None),  # glued to a longer dotted code
            ("000.00.00.H23.", None),
            ("x000.00.00.H23", None),
            ("000.00.00.H234", None),
            ("000.00.00.Đ22", None),
            ("H23.DN.001", None),  # extended codes are not looked for
            ("", None),
        ):
            self.assertEqual(find_organ_id(text), expected, text)


class ClassicOrganIdTests(SynchronousTestCase):
    def test_levels_and_parents(self) -> None:
        unit = ClassicOrganId.parse("001.02.14.H20")
        self.assertEqual(unit, ClassicOrganId(1, 2, 14, "H", 20))
        self.assertEqual(unit.level, 4)
        chain = [str(unit)]
        node: ClassicOrganId | None = unit.parent
        while node is not None:
            chain.append(str(node))
            node = node.parent
        self.assertEqual(
            chain, ["001.02.14.H20", "000.02.14.H20", "000.00.14.H20", "000.00.00.H20"]
        )
        self.assertEqual([ClassicOrganId.parse(c).level for c in chain], [4, 3, 2, 1])
        self.assertEqual(str(unit.root), "000.00.00.H20")

    def test_level_two_of_a_ministry(self) -> None:
        tax = ClassicOrganId.parse("000.00.18.G12")  # Tổng cục Thuế under Bộ Tài chính
        self.assertEqual(tax.level, 2)
        self.assertEqual(str(tax.parent), "000.00.00.G12")
        self.assertIsNone(ClassicOrganId.parse("000.00.00.G12").parent)

    def test_skipped_level_goes_straight_up(self) -> None:
        self.assertEqual(str(ClassicOrganId.parse("000.01.00.H08").parent), "000.00.00.H08")

    def test_refuses_other_forms(self) -> None:
        self.assertRaises(ValueError, ClassicOrganId.parse, "H23.DN.001")
        self.assertIsNone(ClassicOrganId.try_parse("H23.DN.001"))

    @given(classic_ids)
    def test_round_trip_and_ancestry(self, organ_id: str) -> None:
        unit = ClassicOrganId.parse(organ_id)
        self.assertEqual(str(unit), organ_id)
        steps = 0
        node = unit
        while node.parent is not None:
            groups = str(node).split(".")
            lowest = next(i for i in range(3) if int(groups[i]))
            groups[lowest] = "0" * len(groups[lowest])
            self.assertEqual(str(node.parent), ".".join(groups))
            self.assertLess(node.parent.level, node.level)
            node = node.parent
            steps += 1
        self.assertEqual(node, unit.root)
        self.assertEqual(node.level, 1)
        self.assertEqual(steps, sum(1 for g in organ_id.split(".")[:3] if int(g)))


class DocumentIdTests(SynchronousTestCase):
    def test_parses_the_sdk_form(self) -> None:
        parsed = DocumentId.parse("000.00.00.G22,2018/09/20,7816/VPCP-TTĐT")
        self.assertEqual(
            parsed, DocumentId("000.00.00.G22", dt.date(2018, 9, 20), "7816", "VPCP-TTĐT")
        )
        self.assertFalse(parsed.legacy)
        self.assertEqual(str(parsed), "000.00.00.G22,2018/09/20,7816/VPCP-TTĐT")
        assert isinstance(parsed, DocumentId)
        self.assertEqual(parsed.code, "7816/VPCP-TTĐT")

    def test_notation_keeps_its_own_slashes(self) -> None:
        parsed = DocumentId.parse("000.00.00.G22,2020/03/05,30/2020/NĐ-CP")
        assert isinstance(parsed, DocumentId)
        self.assertEqual((parsed.code_number, parsed.code_notation), ("30", "2020/NĐ-CP"))

    def test_extended_organ_id(self) -> None:
        parsed = DocumentId.parse("H23.DN.001,2025/03/05,12/QĐ-UBND")
        self.assertEqual(parsed.organ_id, "H23.DN.001")

    def test_spaces_around_parts_are_tolerated_and_dropped(self) -> None:
        parsed = DocumentId.parse(" 000.00.00.H23 , 2025/03/05 , 123 / UBND-VP ")
        self.assertEqual(str(parsed), "000.00.00.H23,2025/03/05,123/UBND-VP")

    def test_legacy_form_is_recognised(self) -> None:
        parsed = parse_document_id("000.00.01.H08,2018,10")
        self.assertEqual(parsed, LegacyDocumentId("000.00.01.H08", 2018, "10"))
        self.assertTrue(parsed.legacy)
        self.assertEqual(str(parsed), "000.00.01.H08,2018,10")

    def test_impossible_date_names_the_date(self) -> None:
        with self.assertRaises(DocumentIdInvalid) as caught:
            DocumentId.parse("000.00.00.G22,2014/02/30,7806/VPCP-TTĐT")
        error = caught.exception
        self.assertEqual(error.part, "date")
        self.assertIn("2014/02/30", error.message_en)
        self.assertIn("date", error.message_en)
        self.assertIn("ngày ban hành", error.message_vi)
        self.assertIsInstance(error, EdxmlError)
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.fault, Fault.RULE_VIOLATION)

    def test_each_broken_part_is_named(self) -> None:
        cases = {
            "": "format",
            "000.00.00.G22,2018/09/20": "format",
            "000.00.00.G22,,7816/VPCP": "format",
            "000 00 00 G22,2018/09/20,7816/VPCP": "OrganId",
            "000.00.00.G22,20/09/2018,7816/VPCP": "date",
            "000.00.00.G22,2018-09-20,7816/VPCP": "date",
            "000.00.00.G22,2018/13/01,7816/VPCP": "date",
            "000.00.00.G22,2018/09/20,7816": "code",
            "000.00.00.G22,2018/09/20,/VPCP": "CodeNumber",
            "000.00.00.G22,2018/09/20,7816/": "CodeNotation",
            "000.00.00.G22,2018,VPCP": "date",
        }
        for text, part in cases.items():
            with self.assertRaises(DocumentIdInvalid, msg=text) as caught:
                DocumentId.parse(text)
            self.assertEqual(caught.exception.part, part, text)
            self.assertEqual(caught.exception.value, text)

    def test_for_header(self) -> None:
        org = Organization(organ_id="000.00.00.H23", organ_name="UBND tỉnh Hà Nam")
        built = DocumentId.for_header(org, dt.date(2025, 3, 5), Code("123", "UBND-VP"))
        self.assertEqual(str(built), "000.00.00.H23,2025/03/05,123/UBND-VP")
        self.assertEqual(
            DocumentId.for_header("000.00.00.H23", dt.date(2025, 3, 5), "123/UBND-VP"), built
        )

    def test_for_header_refuses_what_would_not_read_back(self) -> None:
        day = dt.date(2025, 3, 5)
        self.assertRaises(DocumentIdInvalid, DocumentId.for_header, "bad id", day, "1/A")
        self.assertRaises(DocumentIdInvalid, DocumentId.for_header, "000.00.00.H23", day, "1/")
        self.assertRaises(
            DocumentIdInvalid, DocumentId.for_header, "000.00.00.H23", day, Code("30/2020", "NĐ-CP")
        )

    @given(
        st.one_of(classic_ids, extended_ids),
        st.dates(min_value=dt.date(1000, 1, 1)),
        st.from_regex(r"\A[0-9]{1,6}\Z"),
        notations,
    )
    def test_format_then_parse_is_identity(
        self, organ_id: str, date: dt.date, number: str, notation: str
    ) -> None:
        built = DocumentId.for_header(organ_id, date, Code(number, notation))
        self.assertEqual(DocumentId.parse(str(built)), built)
        self.assertEqual(str(DocumentId.parse(str(built))), str(built))

    @given(st.text(max_size=60))
    def test_any_text_parses_or_raises_the_typed_error(self, text: str) -> None:
        try:
            parsed = DocumentId.parse(text)
        except DocumentIdInvalid as error:
            self.assertIn(
                error.part, ("format", "OrganId", "date", "code", "CodeNumber", "CodeNotation")
            )
        else:
            self.assertIsInstance(parsed, DocumentId | LegacyDocumentId)


class StrictSyntaxTests(SynchronousTestCase):
    def test_non_ascii_digits_and_trailing_newline_are_not_codes(self) -> None:
        from edxml import organid

        for text in ("٠٠٠.٠٠.٠٠.H٢٣", "000.00.00.H23\n", "000.00.00.H23\n\n"):
            self.assertIsNone(organid.classify(text), repr(text))
            self.assertFalse(organid.is_valid(text), repr(text))
        self.assertEqual(organid.classify("000.00.00.H23"), organid.OrganIdForm.CLASSIC)
