"""Business rules: the three real-world files' defects, then each rule alone, then robustness."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

import edxml
from edxml import rules, text
from edxml.codes import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType
from edxml.findings import Fault, Finding, FindingCode, Severity, registry
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
)

VPCP = Organization(
    organ_id="000.00.00.G22",
    organization_in_charge="Văn phòng Chính phủ",
    organ_name="Văn phòng Chính phủ",
    organ_add="Số 1 Hoàng Hoa Thám, Quận Ba Đình, Hà Nội",
    email="vpcp@gov.vn",
    telephone="8043100",
    fax="048989898789",
    website="vpcp.vn",
)
NGHE_AN = Organization(
    organ_id="000.00.00.H41",
    organization_in_charge="UBND Tỉnh Nghệ An",
    organ_name="UBND Tỉnh Nghệ An",
    organ_add="Số 03, đường Trường Thi, Thành phố Vinh, Tỉnh Nghệ An, Việt Nam",
    email="nghean@gov.vn",
    telephone="0383 840418",
    fax="0383 843049",
    website="www.nghean.vn",
)
STAFF = StaffInfo(
    department="Văn thư văn phòng",
    staff="Nguyễn Thị Ngọc Trâm",
    mobile="84912000001",
    email="vanthuvanphong@gov.vn",
)
BAD_TARGET = "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT"
# Finding paths, as the reader writes them.
H = "/edXMLEnvelope/edXMLHeader/MessageHeader"
T = "/edXMLEnvelope/edXMLHeader/TraceHeaderList"
M = "/edXMLEnvelope/edXMLBody/edXMLManifest/Reference"
A = "/AttachmentEncoded/Attachment"
ZIP = b"PK\x03\x04" + bytes(60)


def _attachment_pair(cid: str = "209", name: str = "1896_QD-TTg_m_294779.doc") -> dict[str, Any]:
    return {
        "manifest": (Reference(f"cid:{cid}", name, "application/zip", name),),
        "attachments": (
            Attachment.of(
                ZIP,
                content_id=f"cid:{cid}",
                attachment_name=name,
                content_type="application/zip",
                description=name,
            ),
        ),
    }


def edoc_new() -> Envelope:
    """edoc_new.edxml as the reader would model it (its date 30/10/2020 read as 2020-10-30)."""
    header = MessageHeader(
        from_=Organization(
            organ_id="000.00.11.H53",
            organization_in_charge="Tỉnh Tây Ninh",
            organ_name="Sở Tính",
            email="stc@tayninh.gov.vn",
        ),
        to=(
            Organization(
                organ_id="000.00.01.A53",
                organization_in_charge="Tỉnh Tây Ninh",
                organ_name="Văn phòng tỉnh ủy",
                organ_add="Tỉnh Tây Ninh",
                email="vptu@tayninh.gov.vn",
            ),
        ),
        code=Code("2491", "STC-BCTC"),
        promulgation_info=PromulgationInfo("Tây Ninh", dt.date(2020, 10, 30)),
        document_type=DocumentType(1, "Công văn", 0),
        subject="Báo cáo tài chính tỉnh",
        content="Báo cáo tài chính tỉnh",
        to_places=("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP"),
        other_info=OtherInfo(
            sphere_of_promulgation="Liên thông văn bản",
            promulgation_amount=2,
            page_amount=22,
            direction=False,
        ),
        steering_type=SteeringType.STEERING,
        document_id="000.00.11.H53,2020/10/30,2491/STC-BCTC",
    )
    trace = TraceHeaderList(
        traces=(TraceHeader("000.00.00.G22", dt.datetime(2018, 9, 28, tzinfo=VN_TZ)),),
        business=Business(
            doc_type=BusinessDocType.NEW,
            reason="Văn bản điện tử mới",
            document_id=BAD_TARGET,
            staff_info=STAFF,
        ),
    )
    return Envelope(header=header, trace=trace, **_attachment_pair())


def edoc_update() -> Envelope:
    header = MessageHeader(
        from_=VPCP,
        to=(
            attrs.evolve(NGHE_AN, organ_id="000.00.00.H53"),
            Organization(organ_id="000.00.12.H53", organ_name="UBND Tỉnh Cao Bằng"),
            Organization(
                organ_id="000.00.00.G17", organ_name="Sở Thông tin truyền thông Hải Phòng"
            ),
        ),
        code=Code("7816", "VPCP-TTĐT"),
        promulgation_info=PromulgationInfo("Hà Nội", dt.date(2018, 9, 28)),
        document_type=DocumentType(1, "Công văn", 0),
        subject="V/v kết nối, liên thông phần mềm quản lý văn bản",
        content="V/v kết nối, liên thông phần mềm quản lý văn bản",
        signer_info=SignerInfo(
            "TL. BO TRUONG", "Cuc truong cuc ung dung cong nghe thong tin", "Nguyen Thanh Phuc"
        ),
        due_date=dt.date(2018, 9, 28),
        to_places=("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP"),
        other_info=OtherInfo(
            sphere_of_promulgation="Liên thông văn bản quốc gia",
            typer_notation="TVC",
            promulgation_amount=2,
            page_amount=22,
            direction=False,
            appendixes=("Công văn về việc kết nối, liên thông phần mềm quản lý văn bản",),
        ),
        steering_type=SteeringType.STEERING,
        document_id="000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
    )
    trace = TraceHeaderList(
        traces=(TraceHeader("000.00.00.G22", dt.datetime(2018, 9, 28, tzinfo=VN_TZ)),),
        business=Business(
            doc_type=BusinessDocType.UPDATE,
            reason="Cập nhật văn bản điện tử",
            document_id=BAD_TARGET,
            staff_info=STAFF,
            document_info=BusinessDocumentInfo(
                document_info=True,
                document_receiver=True,
                receivers=(
                    Receiver("000.00.00.H41", ReceiverType.REMOVED),
                    Receiver("000.00.00.H14", ReceiverType.ADDED),
                ),
            ),
        ),
    )
    return Envelope(header=header, trace=trace, **_attachment_pair())


def status_05() -> StatusPacket:
    return StatusPacket(
        response_for=ResponseFor(
            organ_id="000.00.00.G22",
            code="7816/VPCP-TTĐT",
            promulgation_date=dt.date(2015, 9, 30),
            document_id="000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
        ),
        from_=NGHE_AN,
        status_code=StatusCode.PROCESSING,
        description="Đang xử lý văn bản đến",
        timestamp=dt.datetime(2015, 9, 20, 11, 8, 36, tzinfo=VN_TZ),
        staff_info=StaffInfo("Phong hanh chinh", "Nguyen thi ngoc tram", "84912000001"),
    )


def clean_envelope() -> Envelope:
    """A correct new document (standards.md §2.11), against which each rule is broken alone."""
    return Envelope(
        header=MessageHeader(
            from_=Organization(organ_id="000.00.00.H23", organ_name="UBND tỉnh Hà Nam"),
            to=(VPCP,),
            code=Code("123", "UBND-VP"),
            promulgation_info=PromulgationInfo("Hà Nam", dt.date(2025, 3, 5)),
            document_type=DocumentType(18, "Công văn"),
            subject="V/v báo cáo tình hình ...",
            due_date=dt.date(2025, 3, 12),
            document_id="000.00.00.H23,2025/03/05,123/UBND-VP",
        ),
        trace=TraceHeaderList(
            traces=(
                TraceHeader("000.00.00.H23", dt.datetime(2025, 3, 5, 15, 2, 11, tzinfo=VN_TZ)),
            ),
        ),
        **_attachment_pair("3f0e", "123-UBND-VP.pdf"),
    )


NOW = dt.datetime(2025, 3, 5, 16, 0, tzinfo=VN_TZ)


def codes(findings: tuple[Finding, ...]) -> list[str]:
    return sorted(f.code for f in findings)


def only(findings: tuple[Finding, ...], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    if len(matching) != 1:
        raise AssertionError(f"expected one {code}, got {[f.code for f in findings]}")
    return matching[0]


def header(env: Envelope, **changes: Any) -> Envelope:
    return attrs.evolve(env, header=attrs.evolve(env.header, **changes))


def business(env: Envelope, **changes: Any) -> Envelope:
    trace = attrs.evolve(env.trace, business=attrs.evolve(env.trace.business, **changes))
    return attrs.evolve(env, trace=trace)


class RealWorldFilesTests(SynchronousTestCase):
    def test_clean_envelope_has_no_findings(self) -> None:
        self.assertEqual(rules.check(clean_envelope(), now=NOW), ())

    def test_edoc_new(self) -> None:
        findings = rules.check(edoc_new())
        self.assertEqual(
            codes(findings),
            ["BusinessTargetUnexpected", "DocumentIdInvalid", "TraceOriginMismatch"],
        )
        invalid = only(findings, "DocumentIdInvalid")
        self.assertEqual(invalid.path, f"{T}/Bussiness/DocumentId")
        self.assertIs(invalid.severity, Severity.ERROR)
        self.assertIn("2014/02/30", invalid.message_en)
        self.assertIn("ngày ban hành", invalid.message_vi)
        self.assertIs(only(findings, "BusinessTargetUnexpected").severity, Severity.WARNING)
        origin = only(findings, "TraceOriginMismatch")
        self.assertIn("000.00.00.G22", origin.message_en)
        self.assertIn("000.00.11.H53", origin.message_vi)

    def test_edoc_update(self) -> None:
        findings = rules.check(edoc_update())
        self.assertEqual(codes(findings), ["DocumentIdInvalid", "DocumentIdMismatch"])
        mismatch = only(findings, "DocumentIdMismatch")
        self.assertEqual(mismatch.path, f"{H}/DocumentId")
        self.assertEqual(mismatch.params["part"], "date")
        self.assertIn("2015/09/30", mismatch.message_en)
        self.assertIn("2018/09/28", mismatch.message_en)
        self.assertIn("ngày ban hành", mismatch.message_vi)
        self.assertEqual(only(findings, "DocumentIdInvalid").path, f"{T}/Bussiness/DocumentId")

    def test_status_processing_05(self) -> None:
        self.assertEqual(rules.check(status_05()), ())
        late = rules.check(status_05(), now=dt.datetime(2015, 9, 20, 10, 0, tzinfo=VN_TZ))
        self.assertEqual(codes(late), ["StatusTimestampFuture"])


class OrganIdRuleTests(SynchronousTestCase):
    def test_every_place_an_organ_id_appears(self) -> None:
        env = header(
            clean_envelope(),
            from_=Organization(organ_id="H 23"),
            to=(Organization(organ_id="000.00.00.G22"), Organization(organ_id="")),
            response_for=(ResponseFor(organ_id="x..y", document_id=""),),
        )
        env = attrs.evolve(env, trace=attrs.evolve(env.trace, traces=(TraceHeader("", NOW),)))
        env = business(
            env,
            document_info=BusinessDocumentInfo(receivers=(Receiver("Đ1"),)),
            replacements=(ReplacementInfo("", ("000.00.00.G22", "bad id")),),
        )
        findings = rules.check_organ_ids(env)
        self.assertEqual(
            [(f.code, f.path) for f in findings],
            [
                ("OrganIdInvalid", f"{H}/From/OrganId"),
                ("OrganIdMissing", f"{H}/To[2]/OrganId"),
                ("OrganIdInvalid", f"{H}/ResponseFor[1]/OrganId"),
                ("OrganIdMissing", f"{T}/TraceHeader[1]/OrganId"),
                (
                    "OrganIdInvalid",
                    f"{T}/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[1]/OrganId",
                ),
                (
                    "OrganIdInvalid",
                    f"{T}/Bussiness/ReplacementInfoList/ReplacementInfo[1]/OrganIdList/OrganId[2]",
                ),
            ],
        )
        self.assertTrue(all(f.fault is Fault.RULE_VIOLATION for f in findings))

    def test_extended_form_is_noted(self) -> None:
        env = header(clean_envelope(), to=(Organization(organ_id="H23.DN.001"),))
        finding = only(rules.check_organ_ids(env), "OrganIdExtended")
        self.assertIs(finding.severity, Severity.INFO)
        self.assertEqual(finding.path, f"{H}/To[1]/OrganId")

    def test_status_organ_ids(self) -> None:
        status = attrs.evolve(status_05(), from_=Organization(organ_id="?"))
        status = attrs.evolve(status, response_for=attrs.evolve(status.response_for, organ_id=""))
        self.assertEqual(
            [(f.code, f.path) for f in rules.check_organ_ids(status)],
            [
                ("OrganIdInvalid", f"{H}/From/OrganId"),
                ("OrganIdMissing", f"{H}/ResponseFor/OrganId"),
            ],
        )


class DocumentIdRuleTests(SynchronousTestCase):
    def test_missing(self) -> None:
        finding = only(
            rules.check_document_id(header(clean_envelope(), document_id=" ")), "DocumentIdMissing"
        )
        self.assertIs(finding.severity, Severity.ERROR)

    def test_each_part_that_differs_is_named(self) -> None:
        env = header(clean_envelope(), document_id="000.00.00.H24,2025/03/06,124/UBND-KT")
        findings = rules.check_document_id(env)
        self.assertEqual(
            [(f.params["part"], f.params["found"], f.params["expected"]) for f in findings],
            [
                ("OrganId", "000.00.00.H24", "000.00.00.H23"),
                ("date", "2025/03/06", "2025/03/05"),
                ("CodeNumber", "124", "123"),
                ("CodeNotation", "UBND-KT", "UBND-VP"),
            ],
        )
        self.assertTrue(all(f.code == "DocumentIdMismatch" and f.is_error for f in findings))

    def test_unparseable(self) -> None:
        env = header(clean_envelope(), document_id="000.00.00.H23;2025/03/05;123/UBND-VP")
        finding = only(rules.check_document_id(env), "DocumentIdInvalid")
        self.assertEqual(finding.params["part"], "format")

    def test_legacy_is_a_warning_and_still_compared_by_organ_id(self) -> None:
        env = header(clean_envelope(), document_id="000.00.01.H08,2018,10")
        findings = rules.check_document_id(env)
        self.assertEqual(codes(findings), ["DocumentIdLegacy", "DocumentIdMismatch"])
        self.assertIs(only(findings, "DocumentIdLegacy").severity, Severity.WARNING)
        self.assertEqual(only(findings, "DocumentIdMismatch").params["part"], "OrganId")

    def test_unknown_header_parts_are_not_compared(self) -> None:
        env = header(
            clean_envelope(),
            promulgation_info=PromulgationInfo("Hà Nam", None),
            code=Code("", ""),
        )
        self.assertEqual(rules.check_document_id(env), ())
        self.assertEqual(
            [f.path for f in rules.check_header_fields(env)],
            [
                f"{H}/Code/CodeNumber",
                f"{H}/Code/CodeNotation",
                f"{H}/PromulgationInfo/PromulgationDate",
            ],
        )


class HeaderRuleTests(SynchronousTestCase):
    def test_dates(self) -> None:
        env = header(clean_envelope(), due_date=dt.date(2025, 3, 4))
        self.assertEqual(codes(rules.check_header_fields(env)), ["DueDateBeforePromulgation"])
        yesterday = dt.datetime(2025, 3, 4, 23, 0, tzinfo=VN_TZ)
        self.assertEqual(
            codes(rules.check_header_fields(clean_envelope(), now=yesterday)),
            ["PromulgationDateFuture"],
        )
        # 2025-03-04 18:00 UTC is already 2025-03-05 in Vietnam.
        utc_evening = dt.datetime(2025, 3, 4, 18, 0, tzinfo=dt.UTC)
        self.assertEqual(rules.check_header_fields(clean_envelope(), now=utc_evening), ())

    def test_subject(self) -> None:
        finding = only(
            rules.check_header_fields(header(clean_envelope(), subject="")), "SubjectMissing"
        )
        self.assertIs(finding.severity, Severity.WARNING)

    def test_priority_4(self) -> None:
        env = header(clean_envelope(), other_info=OtherInfo(priority=Priority.EXPRESS_TIMED))
        finding = only(rules.check(env), "PriorityHoaTocHenGio")
        self.assertIs(finding.severity, Severity.INFO)
        self.assertIn("Hỏa tốc", finding.message_vi)
        for priority in (Priority.NORMAL, Priority.EXPRESS):
            env = header(clean_envelope(), other_info=OtherInfo(priority=priority))
            self.assertEqual(rules.check_priority(env), ())


class RecipientRuleTests(SynchronousTestCase):
    def test_no_recipient(self) -> None:
        finding = only(rules.check_recipients(header(clean_envelope(), to=())), "RecipientMissing")
        self.assertTrue(finding.is_error)

    def test_duplicate_reported_once(self) -> None:
        env = header(clean_envelope(), to=(VPCP, NGHE_AN, VPCP, VPCP))
        finding = only(rules.check_recipients(env), "RecipientDuplicate")
        self.assertEqual(finding.path, f"{H}/To[1]/OrganId")
        self.assertEqual(finding.params["count"], "3")

    def test_sender_among_recipients(self) -> None:
        env = header(clean_envelope(), to=(VPCP, Organization(organ_id="000.00.00.H23")))
        finding = only(rules.check_recipients(env), "SenderIsRecipient")
        self.assertIs(finding.severity, Severity.WARNING)


class ReplyRuleTests(SynchronousTestCase):
    def test_reply_consistency(self) -> None:
        original = status_05().response_for
        env = header(clean_envelope(), response_for=(original,))
        self.assertEqual(rules.check_replies(env), ())
        wrong = attrs.evolve(
            original, code="7817/VPCP-TTĐT", promulgation_date=dt.date(2015, 9, 29)
        )
        findings = rules.check_replies(header(clean_envelope(), response_for=(wrong,)))
        self.assertEqual([f.params["part"] for f in findings], ["date", "number/notation"])
        self.assertTrue(all(f.severity is Severity.WARNING for f in findings))

    def test_reply_without_document_id(self) -> None:
        env = header(clean_envelope(), response_for=(ResponseFor(organ_id="000.00.00.G22"),))
        finding = only(rules.check_replies(env), "ResponseForDocumentIdMissing")
        self.assertEqual(finding.path, f"{H}/ResponseFor[1]/DocumentId")
        self.assertIs(finding.severity, Severity.WARNING)

    def test_spaces_around_the_slash_of_code_are_not_a_mismatch(self) -> None:
        reply = attrs.evolve(status_05().response_for, code="7816 / VPCP-TTĐT")
        self.assertEqual(rules.check_replies(header(clean_envelope(), response_for=(reply,))), ())


class ManifestRuleTests(SynchronousTestCase):
    def test_name_and_type_differ(self) -> None:
        env = clean_envelope()
        attachment = attrs.evolve(
            env.attachments[0], attachment_name="khac.pdf", content_type="APPLICATION/ZIP"
        )
        findings = rules.check_manifest(attrs.evolve(env, attachments=(attachment,)))
        finding = only(findings, "ManifestMismatch")  # the type differs only in case: same type
        self.assertEqual(finding.params["part"], "AttachmentName")
        self.assertEqual(finding.path, f"{A}[1]/AttachmentName")
        self.assertIn("khac.pdf", finding.message_vi)
        self.assertIs(finding.severity, Severity.WARNING)
        attachment = attrs.evolve(env.attachments[0], content_type="application/pdf")
        findings = rules.check_manifest(attrs.evolve(env, attachments=(attachment,)))
        self.assertEqual(only(findings, "ManifestMismatch").path, f"{A}[1]/ContentType")

    def test_cid_prefix_and_brackets_do_not_matter(self) -> None:
        env = clean_envelope()
        reference = attrs.evolve(env.manifest[0], content_id="<3f0e>")
        renamed = attrs.evolve(env.attachments[0], content_id="CID:3f0e", attachment_name="x")
        findings = rules.check_manifest(
            attrs.evolve(env, manifest=(reference,), attachments=(renamed,))
        )
        self.assertEqual(only(findings, "ManifestMismatch").params["value"], "3f0e")

    def test_missing_content_ids(self) -> None:
        env = clean_envelope()
        findings = rules.check_manifest(
            attrs.evolve(
                env,
                manifest=(*env.manifest, Reference(" cid: ")),
                attachments=(*env.attachments, attrs.evolve(env.attachments[0], content_id="")),
            )
        )
        self.assertEqual(
            [(f.code, f.path) for f in findings],
            [
                ("ContentIdMissing", f"{M}[2]/ContentId"),
                ("ContentIdMissing", f"{A}[2]/ContentId"),
            ],
        )

    def test_unmatched_ids_are_left_to_the_reader(self) -> None:
        env = clean_envelope()
        other = attrs.evolve(env.attachments[0], content_id="other", attachment_name="y")
        self.assertEqual(rules.check_manifest(attrs.evolve(env, attachments=(other,))), ())


class BusinessRuleTests(SynchronousTestCase):
    target = "000.00.00.H23,2025/01/02,99/UBND-VP"

    def test_revoke_update_replace_need_a_target(self) -> None:
        for doc_type in (BusinessDocType.REVOKE, BusinessDocType.UPDATE, BusinessDocType.REPLACE):
            findings = rules.check_business(business(clean_envelope(), doc_type=doc_type))
            finding = only(findings, "BusinessTargetMissing")
            self.assertEqual(finding.path, f"{T}/Bussiness/DocumentId")
            self.assertIn(str(int(doc_type)), finding.message_en)

    def test_revoke_with_a_target_is_clean(self) -> None:
        env = business(clean_envelope(), doc_type=BusinessDocType.REVOKE, document_id=self.target)
        self.assertEqual(rules.check_business(env), ())

    def test_target_of_another_agency(self) -> None:
        env = business(
            clean_envelope(),
            doc_type=BusinessDocType.REVOKE,
            document_id="000.00.00.G22,2025/01/02,99/VPCP-TTĐT",
        )
        self.assertEqual(codes(rules.check_business(env)), ["BusinessTargetForeign"])

    def test_update_wants_document_info(self) -> None:
        env = business(clean_envelope(), doc_type=BusinessDocType.UPDATE, document_id=self.target)
        self.assertEqual(codes(rules.check_business(env)), ["BusinessDocumentInfoMissing"])
        env = business(env, document_info=BusinessDocumentInfo(document_receiver=True))
        self.assertEqual(codes(rules.check_business(env)), ["BusinessReceiversMissing"])

    def test_replace_wants_replacement_info(self) -> None:
        env = business(clean_envelope(), doc_type=BusinessDocType.REPLACE, document_id=self.target)
        finding = only(rules.check_business(env), "ReplacementInfoMissing")
        self.assertTrue(finding.is_error)
        env = business(
            env,
            replacements=(
                ReplacementInfo(self.target, ("000.00.00.G22",)),
                ReplacementInfo("", ("000.00.00.G22",)),
                ReplacementInfo(BAD_TARGET, ()),
            ),
        )
        self.assertEqual(
            [(f.code, f.path) for f in rules.check_business(env)],
            [
                (
                    "DocumentIdMissing",
                    f"{T}/Bussiness/ReplacementInfoList/ReplacementInfo[2]/DocumentId",
                ),
                (
                    "DocumentIdInvalid",
                    f"{T}/Bussiness/ReplacementInfoList/ReplacementInfo[3]/DocumentId",
                ),
            ],
        )

    def test_new_document_naming_itself_is_fine(self) -> None:
        env = clean_envelope()
        self.assertEqual(rules.check_business(business(env, document_id=env.document_id)), ())
        findings = rules.check_business(business(env, document_id=self.target))
        self.assertEqual(codes(findings), ["BusinessTargetUnexpected"])

    def test_invalid_target_of_an_update(self) -> None:
        env = business(clean_envelope(), doc_type=BusinessDocType.UPDATE, document_id="rác")
        env = business(env, document_info=BusinessDocumentInfo(document_info=True))
        finding = only(rules.check_business(env), "DocumentIdInvalid")
        self.assertEqual(finding.params["part"], "format")


class TraceRuleTests(SynchronousTestCase):
    def traced(self, *traces: TraceHeader) -> Envelope:
        env = clean_envelope()
        return attrs.evolve(env, trace=attrs.evolve(env.trace, traces=traces))

    def test_empty(self) -> None:
        finding = only(rules.check_trace(self.traced()), "TraceEmpty")
        self.assertIs(finding.severity, Severity.WARNING)

    def test_future_beyond_clock_skew(self) -> None:
        near = TraceHeader("000.00.00.H23", NOW + rules.CLOCK_SKEW)
        self.assertEqual(rules.check_trace(self.traced(near), now=NOW), ())
        self.assertEqual(
            rules.check_trace(
                self.traced(attrs.evolve(near, timestamp=NOW + dt.timedelta(hours=1)))
            ),
            (),
        )
        far = attrs.evolve(near, timestamp=NOW + rules.CLOCK_SKEW + dt.timedelta(seconds=1))
        finding = only(rules.check_trace(self.traced(far), now=NOW), "TraceTimestampFuture")
        self.assertEqual(finding.path, f"{T}/TraceHeader[1]/Timestamp")

    def test_naive_times_are_vietnam_time(self) -> None:
        naive_now = dt.datetime(2025, 3, 5, 16, 0)
        stamp = TraceHeader("000.00.00.H23", dt.datetime(2025, 3, 5, 9, 30, tzinfo=dt.UTC))
        # 09:30 UTC is 16:30 in Vietnam: 30 minutes after a naive 16:00 read as Vietnam time.
        self.assertEqual(
            codes(rules.check_trace(self.traced(stamp), now=naive_now)), ["TraceTimestampFuture"]
        )

    def test_order_missing_and_origin(self) -> None:
        findings = rules.check_trace(
            self.traced(
                TraceHeader("000.00.00.G22", NOW),
                TraceHeader("000.00.00.G22", None),
                TraceHeader("000.00.00.G22", NOW - dt.timedelta(minutes=1)),
            )
        )
        self.assertEqual(
            [(f.code, f.path) for f in findings],
            [
                ("TraceOriginMismatch", f"{T}/TraceHeader[1]/OrganId"),
                ("TraceTimestampMissing", f"{T}/TraceHeader[2]/Timestamp"),
                ("TraceOutOfOrder", f"{T}/TraceHeader[3]/Timestamp"),
            ],
        )


class StatusRuleTests(SynchronousTestCase):
    def test_rejection_needs_a_reason(self) -> None:
        status = attrs.evolve(status_05(), status_code=StatusCode.REJECTED, description="  ")
        finding = only(rules.check(status), "StatusDescriptionRequired")
        self.assertEqual((finding.path, finding.severity), (f"{H}/Description", Severity.ERROR))
        status = attrs.evolve(status, description="Sai nơi nhận")
        self.assertEqual(rules.check(status), ())
        status = attrs.evolve(status_05(), description="")
        self.assertEqual(rules.check(status), ())  # only a rejection must say why

    def test_timestamp_required(self) -> None:
        finding = only(
            rules.check(attrs.evolve(status_05(), timestamp=None)), "StatusTimestampMissing"
        )
        self.assertTrue(finding.is_error)

    def test_response_for(self) -> None:
        status = status_05()
        missing = attrs.evolve(
            status, response_for=attrs.evolve(status.response_for, document_id="")
        )
        finding = only(rules.check(missing), "DocumentIdMissing")
        self.assertEqual(finding.path, f"{H}/ResponseFor/DocumentId")
        self.assertTrue(finding.is_error)
        broken = attrs.evolve(
            status, response_for=attrs.evolve(status.response_for, document_id=BAD_TARGET)
        )
        self.assertEqual(codes(rules.check(broken)), ["DocumentIdInvalid"])
        other = attrs.evolve(
            status,
            response_for=attrs.evolve(status.response_for, promulgation_date=dt.date(2018, 9, 28)),
        )
        finding = only(rules.check(other), "ResponseForMismatch")
        self.assertIs(finding.severity, Severity.WARNING)
        self.assertEqual(finding.params["part"], "date")

    def test_who_may_send_which_code(self) -> None:
        status = status_05()
        from_issuer = attrs.evolve(status, from_=VPCP)
        finding = only(rules.check(from_issuer), "StatusSenderUnexpected")
        self.assertIn("recipient", finding.message_en)
        recall = attrs.evolve(from_issuer, status_code=StatusCode.RECALL_REQUESTED)
        self.assertEqual(rules.check(recall), ())
        recall_by_recipient = attrs.evolve(status, status_code=StatusCode.RECALL_REQUESTED)
        finding = only(rules.check(recall_by_recipient), "StatusSenderUnexpected")
        self.assertIn("000.00.00.G22", finding.message_vi)


class FindingCodeTests(SynchronousTestCase):
    def test_every_code_is_bilingual_and_renders(self) -> None:
        declared = [v for v in vars(rules).values() if isinstance(v, FindingCode)]
        # Codes are an interface (stored with verdicts, matched by the gateway): pinned here.
        self.assertEqual(
            sorted(c.code for c in declared),
            sorted(
                [
                    "BusinessDocumentInfoMissing",
                    "BusinessReceiversMissing",
                    "BusinessTargetForeign",
                    "BusinessTargetMissing",
                    "BusinessTargetUnexpected",
                    "ContentIdMissing",
                    "DocumentIdInvalid",
                    "DocumentIdLegacy",
                    "DocumentIdMismatch",
                    "DocumentIdMissing",
                    "DueDateBeforePromulgation",
                    "HeaderFieldMissing",
                    "ManifestMismatch",
                    "OrganIdExtended",
                    "OrganIdInvalid",
                    "OrganIdMissing",
                    "PriorityHoaTocHenGio",
                    "PromulgationDateFuture",
                    "RecipientDuplicate",
                    "RecipientMissing",
                    "ReplacementInfoMissing",
                    "ResponseForDocumentIdMissing",
                    "ResponseForMismatch",
                    "SenderIsRecipient",
                    "StatusDescriptionRequired",
                    "StatusSenderUnexpected",
                    "StatusTimestampFuture",
                    "StatusTimestampMissing",
                    "SubjectMissing",
                    "TraceEmpty",
                    "TraceOriginMismatch",
                    "TraceOutOfOrder",
                    "TraceTimestampFuture",
                    "TraceTimestampMissing",
                ]
            ),
        )
        params = dict.fromkeys(
            [
                "field",
                "value",
                "part",
                "part_vi",
                "reason",
                "reason_vi",
                "found",
                "expected",
                "kind",
                "kind_vi",
                "code",
                "sender",
                "due",
                "promulgated",
                "today",
                "count",
                "where",
                "declared",
                "actual",
                "previous",
                "now",
                "expected_vi",
            ],
            "X",
        )
        for code in declared:
            finding = code(path="/p", **params)
            self.assertNotEqual(finding.message_en, finding.message_vi, code.code)
            self.assertFalse(finding.message_vi.isascii(), code.code)  # real Vietnamese text
            if code.severity is Severity.ERROR:
                self.assertIs(code.fault, Fault.RULE_VIOLATION, code.code)

    def test_codes_coexist_with_every_other_module(self) -> None:
        # Two modules declaring one code differently fail at import: load them all together.
        for module in pkgutil.iter_modules(edxml.__path__):
            importlib.import_module(f"edxml.{module.name}")
        known = registry()
        for ours in (rules, text):
            for code in vars(ours).values():
                if isinstance(code, FindingCode):
                    self.assertEqual(known[code.code], code)


# --- robustness: odd models give findings, never exceptions ----------------------------------

odd_text = st.one_of(
    st.just(""),
    st.sampled_from(["000.00.00.G22", "H23.DN.001", BAD_TARGET, "000.00.01.H08,2018,10", "cid:1"]),
    st.text(max_size=12),
)
dates = st.one_of(st.none(), st.dates())
moments = st.one_of(
    st.none(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(VN_TZ), st.just(dt.UTC))),
)
organizations = st.builds(Organization, organ_id=odd_text)
responses = st.builds(
    ResponseFor, organ_id=odd_text, code=odd_text, promulgation_date=dates, document_id=odd_text
)
envelopes = st.builds(
    Envelope,
    header=st.builds(
        MessageHeader,
        from_=organizations,
        to=st.lists(organizations, max_size=3).map(tuple),
        code=st.builds(Code, code_number=odd_text, code_notation=odd_text),
        promulgation_info=st.builds(PromulgationInfo, promulgation_date=dates),
        document_type=st.builds(DocumentType),
        subject=odd_text,
        due_date=dates,
        other_info=st.builds(OtherInfo, priority=st.sampled_from(Priority)),
        response_for=st.lists(responses, max_size=2).map(tuple),
        document_id=odd_text,
    ),
    trace=st.builds(
        TraceHeaderList,
        traces=st.lists(
            st.builds(TraceHeader, organ_id=odd_text, timestamp=moments), max_size=3
        ).map(tuple),
        business=st.builds(
            Business,
            doc_type=st.sampled_from(BusinessDocType),
            document_id=odd_text,
            document_info=st.one_of(
                st.none(),
                st.builds(
                    BusinessDocumentInfo,
                    document_receiver=st.booleans(),
                    receivers=st.lists(st.builds(Receiver, organ_id=odd_text), max_size=2).map(
                        tuple
                    ),
                ),
            ),
            replacements=st.lists(
                st.builds(
                    ReplacementInfo,
                    document_id=odd_text,
                    organ_ids=st.lists(odd_text, max_size=2).map(tuple),
                ),
                max_size=2,
            ).map(tuple),
        ),
    ),
    manifest=st.lists(
        st.builds(Reference, content_id=odd_text, attachment_name=odd_text, content_type=odd_text),
        max_size=3,
    ).map(tuple),
    attachments=st.lists(
        st.builds(
            Attachment,
            content_id=odd_text,
            attachment_name=odd_text,
            content_type=odd_text,
            size=st.integers(0, 3),
        ),
        max_size=3,
    ).map(tuple),
)
statuses = st.builds(
    StatusPacket,
    response_for=responses,
    from_=organizations,
    status_code=st.sampled_from(StatusCode),
    description=odd_text,
    timestamp=moments,
)


class RobustnessTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(envelopes, statuses), moments)
    def test_rules_and_text_checks_report_and_never_raise(
        self, doc: Envelope | StatusPacket, now: dt.datetime | None
    ) -> None:
        findings = rules.check(doc, now=now) + text.scan(doc)
        for finding in findings:
            self.assertIsInstance(finding, Finding)
            self.assertTrue(finding.message_en and finding.message_vi)
            self.assertTrue(finding.path and finding.path.startswith("/"), finding)
