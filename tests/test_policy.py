"""The regulation's rules over one envelope (gateway.policy): R1 secret markings, R7 paper copy,
R9 issue deadline. Whole-node behaviour (refusal, what is stored) is in test_inbound_rules."""

from __future__ import annotations

import datetime as dt

import attrs
from make_sample import sample_envelope

from twisted.trial.unittest import SynchronousTestCase

from edxml import reader, writer
from edxml.model import Envelope, Extension, Organization
from gateway.calendar import OfficeCalendar
from gateway.config import VIETNAM, CalendarConfig, PolicyConfig
from gateway.policy import late_issue, paper_finding, paper_reasons, secret_finding, secret_marking

ENV = sample_envelope()  # H23 → G22, G09; 123/UBND-VP, promulgated 2025-03-05 (a Wednesday)


def with_header(env: Envelope = ENV, **changes: object) -> Envelope:
    return attrs.evolve(env, header=attrs.evolve(env.header, **changes))


def with_subject(subject: str) -> Envelope:
    return with_header(subject=subject)


def with_sphere(sphere: str) -> Envelope:
    other = attrs.evolve(ENV.header.other_info, sphere_of_promulgation=sphere)
    return with_header(other_info=other)


def to(*organ_ids: str, env: Envelope = ENV) -> Envelope:
    return with_header(env, to=tuple(Organization(organ_id=o, organ_name=o) for o in organ_ids))


class SecretTests(SynchronousTestCase):
    def test_R1_sphere_of_promulgation(self) -> None:
        for sphere, level in (
            ("Mật", "Mật"),
            ("TỐI MẬT", "Tối mật"),
            ("Tuyệt mật - không phổ biến", "Tuyệt mật"),
            ("Độ mật: Tối mật", "Tối mật"),
        ):
            marking = secret_marking(with_sphere(sphere))
            assert marking is not None, sphere
            self.assertEqual(marking.level, level, sphere)
            self.assertEqual(marking.where_en, "SphereOfPromulgation")

    def test_R1_stamp_in_the_subject(self) -> None:
        for subject, level in (
            ("(MẬT) V/v phương án bảo vệ mục tiêu", "Mật"),
            ("[Tối mật] Báo cáo tình hình an ninh", "Tối mật"),
            ("TUYỆT MẬT - Kế hoạch", "Tuyệt mật"),
            ("Kế hoạch phòng thủ (độ mật: Mật)", "Mật"),
        ):
            marking = secret_marking(with_subject(subject))
            assert marking is not None, subject
            self.assertEqual((marking.level, marking.where_en), (level, "Subject"), subject)

    def test_R1_words_that_only_contain_mat_are_not_markings(self) -> None:
        for subject in (
            "V/v tăng cường công tác bảo vệ bí mật nhà nước",
            "V/V BẢO VỆ BÍ MẬT NHÀ NƯỚC NĂM 2025",
            "V/v thay đổi mật khẩu hệ thống quản lý văn bản",
            "MẬT ĐỘ DÂN SỐ CÁC XÃ",
            "Hướng dẫn sử dụng mật mã dân sự",
            "Hội chợ mật ong Hà Nam",
        ):
            self.assertIsNone(secret_marking(with_subject(subject)), subject)
        self.assertIsNone(secret_marking(with_sphere("Liên thông văn bản quốc gia")))
        self.assertIsNone(secret_marking(with_sphere("Lưu hành nội bộ")))

    def test_R1_explicit_field(self) -> None:
        def field(tag: str, value: str) -> Envelope:
            xml = f'<x:{tag} xmlns:x="urn:example">{value}</x:{tag}>'.encode()
            ext = Extension(tag=f"{{urn:example}}{tag}", xml=xml)
            other = attrs.evolve(ENV.header.other_info, extensions=(ext,))
            return with_header(other_info=other)

        marking = secret_marking(field("SecurityLevel", "Tối mật"))
        assert marking is not None
        self.assertEqual((marking.level, marking.where_en), ("Tối mật", "OtherInfo/SecurityLevel"))
        self.assertEqual(secret_marking(field("DoMat", "1")).level, "Mật")  # type: ignore[union-attr]
        self.assertIsNone(secret_marking(field("DoMat", "0")))
        self.assertIsNone(secret_marking(field("SecurityLevel", "Thường")))
        self.assertIsNone(secret_marking(field("ApplicationType", "MCDT_DT")))

    def test_R1_the_marking_survives_the_wire(self) -> None:
        data = writer.write(with_sphere("Tối mật"))
        doc = reader.read(data).document
        assert isinstance(doc, Envelope)
        finding = secret_finding(doc)
        assert finding is not None
        self.assertEqual(finding.code, "SecretDocument")
        self.assertTrue(finding.is_error)
        self.assertEqual(finding.fault.value if finding.fault else None, "SecretDocument")
        self.assertIn("Tối mật", finding.message_en)
        self.assertIn("văn bản mật không được gửi", finding.message_vi)

    def test_R1_the_sample_is_not_secret(self) -> None:
        self.assertIsNone(secret_finding(ENV))


class PaperTests(SynchronousTestCase):
    policy = PolicyConfig()

    def reasons(self, env: Envelope) -> list[str]:
        return [r.en for r in paper_reasons(env, self.policy)]

    def test_R7_to_the_government_and_ministries(self) -> None:
        found = self.reasons(ENV)  # the sample goes to VPCP (G22) and Bộ Nội vụ (G09)
        self.assertEqual(found, ["sent to 000.00.00.G22, 000.00.00.G09 (Government, ministries)"])
        self.assertEqual(self.reasons(to("000.00.01.H23")), [])
        self.assertEqual(self.reasons(to("000.00.18.G12")), [])  # a Tổng cục, not the ministry

    def test_R7_the_senders_paper_flag(self) -> None:
        business = attrs.evolve(ENV.trace.business, paper=True)
        env = to(
            "000.00.01.H23", env=attrs.evolve(ENV, trace=attrs.evolve(ENV.trace, business=business))
        )
        self.assertEqual(self.reasons(env), ["the sender sends it on paper too"])

    def test_R7_legal_normative_documents(self) -> None:
        code = attrs.evolve(ENV.header.code, code_number="12", code_notation="2024/QĐ-UBND")
        self.assertIn(
            "a legal normative document",
            self.reasons(to("000.00.01.H23", env=with_header(code=code))),
        )
        decree = attrs.evolve(ENV.header.document_type, type_name="Nghị định")
        self.assertIn(
            "a legal normative document",
            self.reasons(to("000.00.01.H23", env=with_header(document_type=decree))),
        )

    def test_R7_submissions_to_the_provincial_peoples_committee(self) -> None:
        submission = attrs.evolve(ENV.header.document_type, type_name="Tờ trình")
        env = to("000.00.00.H23", env=with_header(document_type=submission))
        self.assertEqual(
            self.reasons(env), ["a submission to the People's Committee 000.00.00.H23"]
        )
        self.assertEqual(self.reasons(to("000.00.00.H23")), [])  # a Công văn to it: no paper

    def test_R7_finance_personnel_complaints(self) -> None:
        env = to("000.00.01.H23", env=with_subject("V/v giải quyết khiếu nại của công dân"))
        self.assertEqual(self.reasons(env), ["a matter of khiếu nại"])

    def test_R7_configured_lists(self) -> None:
        policy = PolicyConfig(paper_recipients=("000.00.01.H23",), paper_keywords=())
        self.assertEqual(len(paper_reasons(to("000.00.01.H23"), policy)), 1)
        self.assertEqual(paper_reasons(ENV, policy), ())

    def test_R7_finding_is_bilingual(self) -> None:
        finding = paper_finding(paper_reasons(ENV, self.policy))
        assert finding is not None
        self.assertEqual(finding.code, "PaperCopyRequired")
        self.assertFalse(finding.is_error)
        self.assertIn("Chính phủ, bộ ngành", finding.message_vi)
        self.assertIsNone(paper_finding(()))


class LateIssueTests(SynchronousTestCase):
    calendar = OfficeCalendar(CalendarConfig())

    def at(self, *args: int) -> dt.datetime:
        return dt.datetime(*args, tzinfo=VIETNAM)  # type: ignore[misc]

    def test_R9_sent_the_next_working_morning_is_in_time(self) -> None:
        self.assertIsNone(late_issue(ENV, self.calendar, self.at(2025, 3, 5, 16, 0)))
        self.assertIsNone(late_issue(ENV, self.calendar, self.at(2025, 3, 6, 11, 29)))

    def test_R9_sent_in_the_afternoon_after_is_late(self) -> None:
        finding = late_issue(ENV, self.calendar, self.at(2025, 3, 6, 14, 0))
        assert finding is not None
        self.assertEqual(finding.code, "LateIssue")
        self.assertFalse(finding.is_error)
        self.assertIn("2025-03-06T11:30:00+07:00", finding.message_en)
        self.assertIn("2025-03-06T14:00:00+07:00", finding.message_vi)

    def test_R9_a_weekend_in_between(self) -> None:
        friday = with_header(
            promulgation_info=attrs.evolve(
                ENV.header.promulgation_info, promulgation_date=dt.date(2025, 3, 7)
            )
        )
        self.assertIsNone(late_issue(friday, self.calendar, self.at(2025, 3, 10, 9, 0)))
        self.assertIsNotNone(late_issue(friday, self.calendar, self.at(2025, 3, 10, 13, 30)))

    def test_R9_without_a_date_nothing_to_say(self) -> None:
        undated = with_header(
            promulgation_info=attrs.evolve(ENV.header.promulgation_info, promulgation_date=None)
        )
        self.assertIsNone(late_issue(undated, self.calendar, self.at(2030, 1, 1, 9, 0)))
