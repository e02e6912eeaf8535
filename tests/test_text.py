"""Unicode checks: the attrs text walker, legacy TCVN3/VNI detection and conversion, findings."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml import text, xmlsafe
from edxml.codes import StatusCode
from edxml.findings import Fault, Severity
from edxml.model import (
    Business,
    Code,
    DocumentType,
    Envelope,
    Extension,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Reference,
    ReplacementInfo,
    ResponseFor,
    StaffInfo,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
)
from edxml.text import LegacyEncoding, convert_legacy, detect_legacy, encode_legacy, is_syllable

TCVN3, VNI = LegacyEncoding.TCVN3, LegacyEncoding.VNI
REAL_WORLD_DIR = Path(__file__).parent / "fixtures" / "realworld"
# Finding paths, as the reader writes them.
H = "/edXMLEnvelope/edXMLHeader/MessageHeader"
T = "/edXMLEnvelope/edXMLHeader/TraceHeaderList"
M = "/edXMLEnvelope/edXMLBody/edXMLManifest/Reference"
A = "/AttachmentEncoded/Attachment"

# Every text of the three real-world files (shared/fixtures/realworld), as read from them.
REAL_WORLD_TEXTS = [
    "Tỉnh Tây Ninh",
    "Sở Tính",
    "Văn phòng tỉnh ủy",
    "stc@tayninh.gov.vn",
    "vptu@tayninh.gov.vn",
    "000.00.11.H53,2020/10/30,2491/STC-BCTC",
    "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT",
    "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
    "2491",
    "STC-BCTC",
    "VPCP-TTĐT",
    "7816/VPCP-TTĐT",
    "Tây Ninh",
    "30/10/2020",
    "2018/09/28 00:00:00",
    "2015/09/20 11:08:36",
    "Công văn",
    "Báo cáo tài chính tỉnh",
    "Liên thông văn bản",
    "Liên thông văn bản quốc gia",
    "Cac bo va co quan ngang bo",
    "Uy ban nhan dan cac tinh, TP",
    "Văn bản điện tử mới",
    "Cập nhật văn bản điện tử",
    "Văn thư văn phòng",
    "Nguyễn Thị Ngọc Trâm",
    "84912000001",
    "vanthuvanphong@gov.vn",
    "CN=user05",
    "MIIFqTCCBJG",
    "FwgIqsSYJshUS2+wlOM61L+q7Aw=",
    "1896_QD-TTg_m_294779.doc",
    "application/zip",
    "cid:209",
    "Văn phòng Chính phủ",
    "Số 1 Hoàng Hoa Thám, Quận Ba Đình, Hà Nội",
    "vpcp@gov.vn",
    "vpcp.vn",
    "048989898789",
    "UBND Tỉnh Nghệ An",
    "Số 03, đường Trường Thi, Thành phố Vinh, Tỉnh Nghệ An, Việt Nam",
    "0383 840418",
    "www.nghean.vn",
    "UBND Tỉnh Cao Bằng",
    "Số 011 - Đường Hoàng Đình Giong - Thành Phố Cao Bằng, Tỉnh Cao Bằng",
    "www.caobang.gov.vn",
    "Sở Thông tin truyền thông Hải Phòng",
    "số 62 - Võ Thị Sáu - Ngô Quyền - Hải Phòng",
    "(84-4) 3821 5137",
    "(023)37366617",
    "Hà Nội",
    "V/v kết nối, liên thông phần mềm quản lý văn bản",
    "TL. BO TRUONG",
    "Cuc truong cuc ung dung cong nghe thong tin",
    "Nguyen Thanh Phuc",
    "TVC",
    "Công văn về việc kết nối, liên thông phần mềm quản lý văn bản",
    "Nguyen thi ngoc tram",
    "Phong hanh chinh",
    "ngoctram@nghean.vn",
    "Đang xử lý văn bản đến",
]

# Examples of standards.md §2–§4, §8 and §11, and the 63 provinces of its §3.3.
STANDARDS_TEXTS = [
    "KT. BỘ TRƯỞNG, CHỦ NHIỆM",
    "PHÓ CHỦ NHIỆM",
    "Lê Mạnh Hà",
    "TL. Chủ tịch",
    "Chánh văn phòng UBND thành phố",
    "UBND tỉnh Hà Nam",
    "V/v báo cáo tình hình ...",
    "Lưu hành nội bộ",
    "Văn thư - Phòng Văn thư - Lưu trữ: Đã đến - Phần mềm QLVB đã nhận nhưng văn thư chưa xử lý",
    "Văn thư đồng ý yêu cầu cập nhật, lấy lại",
    "File dinh kem 1",
    "123-UBND-VP.pdf",
    "Số: 12/QĐ-UBND",
    "30/2020/NĐ-CP, 09/2025/QĐ-TTg, 4107/UBND-KGVX, 30/TTr-STC",
    "Quyết định, Nghị quyết, Chỉ thị, Quy chế, Quy định, Thông cáo, Thông báo, Hướng dẫn",
    "Chương trình, Kế hoạch, Phương án, Đề án, Dự án, Báo cáo, Biên bản, Tờ trình, Hợp đồng",
    "Công điện, Bản ghi nhớ, Bản thỏa thuận, Giấy ủy quyền, Giấy mời, Giấy giới thiệu",
    "Giấy nghỉ phép, Phiếu gửi, Phiếu chuyển, Phiếu báo, Thư công",
    "Khẩn, Thượng khẩn, Hỏa tốc, Hỏa tốc hẹn giờ, Mật, Tối mật, Tuyệt mật",
    "Ký thay (KT.), thừa lệnh (TL.), thừa ủy quyền (TUQ.), thay mặt (TM.), quyền (Q.)",
    "Hòa/Hoà, Thúy/Thuý, Khánh Hòa/Khánh Hoà, Thanh Hóa/Thanh Hoá",
    "Trục liên thông văn bản quốc gia; Nền tảng tích hợp, chia sẻ dữ liệu cấp tỉnh",
    "Ngày Văn hóa Việt Nam; Giỗ Tổ Hùng Vương; Tết Nguyên Đán (nghỉ bù)",
    "Mùng bốn Tết, 29 Tết, Giao thừa",
    "Sổ đăng ký văn bản, Hồ sơ, Danh mục hồ sơ, Nộp lưu, Thời hạn bảo quản (vĩnh viễn)",
    "An Giang, Bà Rịa - Vũng Tàu, Bắc Giang, Bắc Kạn, Bạc Liêu, Bắc Ninh, Bến Tre, Bình Định",
    "Bình Dương, Bình Phước, Bình Thuận, Cà Mau, Cần Thơ, Cao Bằng, Đà Nẵng, Đắk Lắk",
    "Đắk Nông, Điện Biên, Đồng Nai, Đồng Tháp, Gia Lai, Hà Giang, Hà Nam, Hà Nội, Hà Tĩnh",
    "Hải Dương, Hải Phòng, Hậu Giang, Hồ Chí Minh, Hòa Bình, Hưng Yên, Khánh Hòa",
    "Kiên Giang, Kon Tum, Lai Châu, Lâm Đồng, Lạng Sơn, Lào Cai, Long An, Nam Định",
    "Nghệ An, Ninh Bình, Ninh Thuận, Phú Thọ, Phú Yên, Quảng Bình, Quảng Nam, Quảng Ngãi",
    "Quảng Ninh, Quảng Trị, Sóc Trăng, Sơn La, Tây Ninh, Thái Bình, Thái Nguyên, Thanh Hóa",
    "Thừa Thiên Huế, Tiền Giang, Trà Vinh, Tuyên Quang, Vĩnh Long, Vĩnh Phúc, Yên Bái",
    "Buôn Ma Thuột, Pleiku, Krông Pắc, Ea Súp, Chư Prông, Hmông, H'Mông, Mèo Vạc, Đồng Văn",
    "Mường Tè, Sìn Hồ, Xín Mần, Pác Bó, Côn Đảo, Phú Quốc, Hóc Môn, Nhà Bè, Cần Giờ",
    "Nguyễn Văn An, Trần Thị Bích Ngọc, Lê Quý Đôn, Phạm Thị Thu Thủy, Hoàng Quốc Việt",
    "Bùi Thị Xuân, Đỗ Mười, Võ Nguyên Giáp, Ngô Thì Nhậm, Huỳnh Tấn Phát, Dương Văn Minh",
    "Nguyễn Thị Khuê, Lý Thường Kiệt, Quách Tuấn Khanh, Khổng Minh, Châu Văn Liêm",
    "Bộ Nội vụ, Bộ Tài chính, Tổng cục Thuế, Bộ Xây dựng, Bộ Khoa học và Công nghệ",
    "Sở Thông tin và Truyền thông, Sở Kế hoạch và Đầu tư, Ban Cơ yếu Chính phủ",
]

# Quy chế 40/2019/QĐ-UBND of Hà Nam (shared/seeds), a sample of its lines.
REGULATION_TEXTS = [
    "QUY CHẾ",
    "Tiếp nhận, xử lý, phát hành và quản lý văn bản điện tử",
    "tại các cơ quan hành chính nhà nước tỉnh Hà Nam",
    "(Ban hành kèm theo Quyết định số 40 /2019/QĐ-UBND ngày 16 /10 /2019",
    "của Ủy ban nhân dân tỉnh Hà Nam)",
    "QUY ĐỊNH CHUNG",
    "Điều 1. Phạm vi điều chỉnh",
    "1. Quy chế này quy định việc tiếp nhận, xử lý, phát hành và quản lý văn bản điện tử trên Hệ "
    "thống quản lý văn bản và điều hành của các cơ quan hành chính nhà nước trên địa bàn tỉnh Hà "
    "Nam.",
    "2. Quy chế này không áp dụng đối với việc gửi, nhận văn bản điện tử có nội dung thuộc bí mật "
    "nhà nước theo quy định của pháp luật.",
    "Điều 2. Đối tượng áp dụng",
    "c) Hình thức chữ ký số của cơ quan, đơn vị thực hiện số hóa trên văn bản số hóa để xử lý công "
    "việc trong Hệ thống:",
    "4. Định kỳ 6 tháng, hàng năm hoặc đột xuất, báo cáo việc triển khai thực hiện Quy chế này về "
    "Sở Thông tin và Truyền thông, Văn phòng Ủy ban nhân dân tỉnh để tổng hợp báo cáo Ủy ban nhân "
    "dân tỉnh.",
    "2. Văn bản điện tử phải được phát hành ngay trong ngày văn bản đó được ký ban hành, chậm nhất "
    "là trong buổi sáng của ngày làm việc tiếp theo.",
    "Cá nhân được giao nhiệm vụ lập hồ sơ, căn cứ vào Danh mục hồ sơ trong năm để xác định số, ký "
    "hiệu hồ sơ cho văn bản đi, văn bản đến và các tài liệu liên quan",
    "- đ) Định dạng các tài liệu ảnh đồ họa: *.jpg, *.png, *.gif.",
    "Trong Quy chế này, các từ ngữ dưới đây được hiểu như sau:",
    "b) Người đứng đầu cơ quan hoặc người có thẩm quyền có trách nhiệm phân phối, chỉ đạo đơn vị, "
    "cá nhân chủ trì giải quyết văn bản.",
    "- Tỷ lệ số hóa: 100%.",
    "a) Trường hợp đảm bảo tính xác thực, tính toàn vẹn trên văn bản điện tử được ký số thì văn "
    "thư bên nhận tiến hành tiếp nhận và có trách nhiệm thông báo ngay trong ngày",
    "1. Việc tổng hợp, trích xuất thông tin, dữ liệu về tình hình, kết quả gửi, nhận văn bản điện "
    "tử của các cơ quan, đơn vị được thực hiện tự động trên Hệ thống quản lý văn bản và điều hành.",
    "Trong quá trình thực hiện có khó khăn, vướng mắc và cần sửa đổi, bổ sung, các cơ quan, tổ "
    "chức và cá nhân kịp thời phản ánh về Sở Thông tin và Truyền thông để tổng hợp, báo cáo Ủy "
    "ban nhân dân tỉnh xem xét, điều chỉnh Quy chế cho phù hợp. /",
    "d) Phân công cán bộ chuyên trách hoặc phụ trách công nghệ thông tin quản trị hệ thống phần "
    "mềm;",
    "2. Trục liên thông văn bản nội tỉnh là giải pháp kỹ thuật, công nghệ được triển khai từ Văn "
    "phòng Ủy ban nhân dân tỉnh tới các cơ quan nhà nước tỉnh Hà Nam để kết nối, liên thông gửi, "
    "nhận văn bản điện tử.",
    "đ) Tổ chức đào tạo, hướng dẫn cán bộ, công chức, viên chức sử dụng Hệ thống quản lý văn bản "
    "và điều hành trong điều hành, giải quyết công việc;",
]

# Latin-script text a Vietnamese agency does meet: foreign names, addresses, French and German.
FOREIGN_TEXTS = [
    "François Müller",
    "Jürgen Groß, Straße des 17. Juni 135, 10623 Berlin",
    "Hélène Côté, Québec",
    "Loïc Le Gall",
    "Zoë Brontë; Søren Kierkegaard; Ångström; Björn Ulvaeus",
    "José Martínez Peña; Niño de la Torre, Señor Muñoz",
    "São Paulo, João Gonçalves, Camões",
    "Citroën, Gérard Depardieu, Noël Coward",
    "Günter Grass, Göttingen, Köln, Düsseldorf, München",
    "L'été où il fait beau, déjà là-bas, le maïs et le thé, là où il a vécu",
    "Raphaël, Anaïs, Héloïse, Gaël, Maël",
    "Université Paris-Saclay, École normale supérieure",
    "Ministère de l'Europe et des Affaires étrangères",
    "Auswärtiges Amt der Bundesrepublik Deutschland",
    "Ambassade de France au Viêt Nam",
    "Frédéric Chopin, Antonín Dvořák",
    "Straße, Maß, Fußball, Größe; naïve café résumé fiancée",
    "plus tôt, bientôt, aussitôt",
    "Österreich, Übersee, Ärzte; Malmö, Tromsø, Århus, Reykjavík",
    "Ça va très bien, merci; crème brûlée à la carte; garçon, façade, leçon",
    "1½ giờ, 2×3 m, © 2020 Bộ Nội vụ, § 3, 25 °C, ½ ¼ ¾ · · ·",
    "«Hà Nội» — “Hồ Chí Minh” ‘Huế’",
    "Æsop, Œuvre, Ørsted",
]

OTHER_TEXTS = [
    "",
    "000.00.00.G22",
    "H23.DN.001",
    "https://dichvucong.hochiminhcity.gov.vn/1.000656.000.00.00.H29?x=1&y=2",
    "Received: 2025-03-05T15:02:11+07:00",
    "The document was received and registered.",
    "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K",
    "Nguyễn Văn A <nguyenvana@hanam.gov.vn>",
    # Decomposed ("Unicode tổ hợp") input is someone else's finding, never mojibake.
    unicodedata.normalize("NFD", "Cộng hòa xã hội chủ nghĩa Việt Nam"),
]


def envelope(**header_changes: Any) -> Envelope:
    header = MessageHeader(
        from_=Organization(organ_id="000.00.00.H23", organ_name="UBND tỉnh Hà Nam"),
        to=(
            Organization(organ_id="000.00.00.G22", organ_name="Văn phòng Chính phủ"),
            Organization(organ_id="000.00.00.H41", organ_name="UBND Tỉnh Nghệ An"),
        ),
        code=Code("123", "UBND-VP"),
        promulgation_info=PromulgationInfo("Hà Nam", dt.date(2025, 3, 5)),
        document_type=DocumentType(18, "Công văn"),
        subject="V/v báo cáo tình hình",
        to_places=("Văn phòng Chính phủ", "Lưu: VT"),
        other_info=OtherInfo(appendixes=("Phụ lục I",)),
        document_id="000.00.00.H23,2025/03/05,123/UBND-VP",
    )
    return Envelope(
        header=attrs.evolve(header, **header_changes),
        trace=TraceHeaderList(
            traces=(TraceHeader("000.00.00.H23", None),),
            business=Business(
                staff_info=StaffInfo(staff="Trần Thị B"),
                replacements=(ReplacementInfo("x", ("000.00.00.G22", "000.00.00.G17")),),
            ),
            id="9f2c01ab",
        ),
        manifest=(Reference("3f0e", "Báo cáo.pdf", "application/pdf"),),
    )


def status() -> StatusPacket:
    return StatusPacket(
        response_for=ResponseFor(organ_id="000.00.00.G22", code="7816/VPCP-TTĐT"),
        from_=Organization(organ_id="000.00.00.H41"),
        status_code=StatusCode.REJECTED,
        description="Sai nơi nhận",
    )


class IterTextTests(SynchronousTestCase):
    def test_paths_follow_edxml_element_names(self) -> None:
        found = dict(text.iter_text(envelope()))
        expected = {
            f"{H}/From/OrganId": "000.00.00.H23",
            f"{H}/To[2]/OrganName": "UBND Tỉnh Nghệ An",
            f"{H}/Code/CodeNotation": "UBND-VP",
            f"{H}/PromulgationInfo/Place": "Hà Nam",
            f"{H}/DocumentType/TypeName": "Công văn",
            f"{H}/ToPlaces/Place[2]": "Lưu: VT",
            f"{H}/OtherInfo/Appendixes/Appendix[1]": "Phụ lục I",
            f"{H}/DocumentId": "000.00.00.H23,2025/03/05,123/UBND-VP",
            f"{T}/@id": "9f2c01ab",
            f"{T}/TraceHeader[1]/OrganId": "000.00.00.H23",
            f"{T}/Bussiness/BussinessDocReason": "",
            f"{T}/Bussiness/StaffInfo/Staff": "Trần Thị B",
            f"{T}/Bussiness/ReplacementInfoList/ReplacementInfo[1]/OrganIdList"
            "/OrganId[2]": "000.00.00.G17",
            f"{M}[1]/AttachmentName": "Báo cáo.pdf",
        }
        for path, value in expected.items():
            self.assertEqual(found.get(path), value, path)

    def test_every_string_leaf_once(self) -> None:
        items = list(text.iter_text(envelope()))
        paths = [p for p, _ in items]
        self.assertEqual(len(paths), len(set(paths)))
        # Organization has 8 text fields; two To, one From.
        self.assertEqual(sum(1 for p in paths if p.startswith(f"{H}/To[")), 16)
        self.assertFalse(any("StaffInfo" in p for p in paths if "MessageHeader" in p))

    def test_status_paths_and_extensions(self) -> None:
        found = dict(text.iter_text(status(), text.root_path(status())))
        self.assertEqual(found[f"{H}/ResponseFor/Code"], "7816/VPCP-TTĐT")
        self.assertEqual(found[f"{H}/Description"], "Sai nơi nhận")
        with_extension = attrs.evolve(status(), extensions=(Extension("{urn:x}Note", b"<x/>"),))
        found = dict(text.iter_text(with_extension, H))
        self.assertEqual(found[f"{H}/Extensions[1]/Tag"], "{urn:x}Note")

    def test_non_attrs_values_yield_nothing(self) -> None:
        self.assertEqual(list(text.iter_text("plain")), [])
        self.assertEqual(list(text.iter_text(None)), [])

    @given(st.text(min_size=1, max_size=20), st.integers(0, 3))
    def test_a_value_is_found_where_it_was_put(self, value: str, index: int) -> None:
        places = ["a", "b", "c", "d"]
        places[index] = value
        env = envelope(to_places=tuple(places))
        found = dict(text.iter_text(env))
        # The model stores text NFC-normalised.
        expected = unicodedata.normalize("NFC", value)
        self.assertEqual(found[f"{H}/ToPlaces/Place[{index + 1}]"], expected)


class SyllableTests(SynchronousTestCase):
    def test_vietnamese_words(self) -> None:
        for word in (
            "Việt", "nghĩa", "người", "khuỷu", "quyết", "giường", "gì", "hoà", "hòa", "thuý",
            "thúy", "xoong", "Nguyễn", "ĐƯỜNG", "Khuê", "uyên", "oái", "tuần", "hoặc", "yếm",
        ):  # fmt: skip
            self.assertTrue(is_syllable(word), word)

    def test_not_vietnamese_words(self) -> None:
        for word in (
            "tõt",  # a syllable closed by t takes only sắc or nặng
            "hép" + "à",
            "héi",
            "caùc",
            "xaõ",  # the tone of "ao" sits on the a
            "Krông",
            "street",
            "qúa",  # the u of qu never carries the tone
            "việtt",
            "",
        ):
            self.assertFalse(is_syllable(word), word)
        self.assertFalse(is_syllable("xoong", loan_rhymes=False))


class LegacyDetectionTests(SynchronousTestCase):
    def test_tcvn3_examples(self) -> None:
        cases = {
            "hép møt tÕt": "hộp mứt tết",
            "Céng hoµ x· héi chñ nghÜa ViÖt Nam": "Cộng hoà xã hội chủ nghĩa Việt Nam",
            "Hµ Néi": "Hà Nội",
            "tr\xadêng §¹i häc": "trường Đại học",
            "CéNG HOµ X· HéI CHñ NGHÜA VIÖT NAM": "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        }
        for legacy, reading in cases.items():
            self.assertIs(detect_legacy(legacy), TCVN3, legacy)
            self.assertEqual(convert_legacy(legacy, TCVN3), reading)

    def test_vni_examples(self) -> None:
        cases = {
            "Xin chaøo caùc baïn": "Xin chào các bạn",
            "Coäng hoøa xaõ hoäi chuû nghóa Vieät Nam": "Cộng hòa xã hội chủ nghĩa Việt Nam",
            "COÄNG HOØA XAÕ HOÄI CHUÛ NGHÓA VIEÄT NAM": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Ñöôøng Tröôøng Thi, thaønh phoá Vinh": "Đường Trường Thi, thành phố Vinh",
        }
        for legacy, reading in cases.items():
            self.assertIs(detect_legacy(legacy), VNI, legacy)
            self.assertEqual(convert_legacy(legacy, VNI), reading)

    def test_tables(self) -> None:
        self.assertEqual(len(text.TCVN3_ENCODE), 134)
        self.assertEqual(len(text.TCVN3_DECODE), 74)
        self.assertEqual(len(set(text.TCVN3_DECODE.values())), 74)
        # Spot checks against TCVN 5712:1993 (glibc's TCVN5712-1 codec).
        tcvn3 = {0xB5: "à", 0xB8: "á", 0xAE: "đ", 0xA7: "Đ", 0xAD: "ư", 0xF7: "ữ", 0xFE: "ỵ"}
        tcvn3 |= {0xD6: "ệ", 0xDC: "ĩ", 0xE9: "ộ", 0xA1: "Ă"}
        for code, letter in tcvn3.items():
            self.assertEqual(text.TCVN3_DECODE[bytes([code]).decode("cp1252")], letter)
        vni = {"ơ": "ô", "ư": "ö", "đ": "ñ", "ĩ": "ó", "ị": "ò", "ỵ": "î", "ậ": "aä", "ặ": "aë"}
        vni |= {"ớ": "ôù", "ừ": "öø", "ủ": "uû", "ằ": "aè", "ẩ": "aå"}
        for letter, vni_code in vni.items():
            self.assertEqual(text.VNI_ENCODE[letter], vni_code)

    def test_no_false_positive_on_real_text(self) -> None:
        corpus = REAL_WORLD_TEXTS + STANDARDS_TEXTS + REGULATION_TEXTS + FOREIGN_TEXTS + OTHER_TEXTS
        flagged = [(t, detect_legacy(t)) for t in corpus if detect_legacy(t) is not None]
        self.assertEqual(flagged, [])

    def test_no_false_positive_in_the_real_world_files(self) -> None:
        # Every text node of the files themselves (the hardened parser, not the reader).
        files = sorted(REAL_WORLD_DIR.glob("*.edxml"))
        self.assertEqual(len(files), 3)
        texts = []
        for path in files:
            root = xmlsafe.parse_stream(path.read_bytes()).root
            for element in root.iter():
                if isinstance(element.tag, str) and element.text and element.text.strip():
                    texts.append(element.text.strip())
        self.assertGreater(len(texts), 100)
        self.assertEqual([(t, detect_legacy(t)) for t in texts if detect_legacy(t)], [])
        self.assertEqual([f for t in texts for f in text.check_text("/x", t)], [])

    def test_real_text_typed_in_legacy_fonts_is_found(self) -> None:
        for line in REGULATION_TEXTS + STANDARDS_TEXTS[:24]:
            words = [w for w in line.split() if not w.isascii()]
            for encoding in LegacyEncoding:
                legacy = encode_legacy(line, encoding)
                if len(words) >= 3:
                    self.assertIs(detect_legacy(legacy), encoding, (encoding, legacy))
                back = convert_legacy(legacy, encoding)
                if encoding is VNI:
                    self.assertEqual(back, line)
                else:  # a VN3 font has no toned capitals: their case is guessed
                    self.assertEqual(back.lower(), line.lower())

    def test_a_recurring_foreign_name_does_not_add_up(self) -> None:
        french = "Le directeur Loïc Martin a rencontré la délégation à Hà Nội. " * 5
        self.assertIsNone(detect_legacy(french + "Loïc a présenté le projet du Thaï."))

    def test_one_legacy_paragraph_in_a_long_unicode_text(self) -> None:
        body = "\n".join(REGULATION_TEXTS)
        legacy = encode_legacy("Báo cáo tình hình kinh tế - xã hội quý I năm 2025", TCVN3)
        self.assertIsNone(detect_legacy(body))
        self.assertIs(detect_legacy(f"{body}\n{legacy}\n{body}"), TCVN3)

    def test_a_single_ambiguous_word_is_not_enough(self) -> None:
        self.assertIsNone(detect_legacy("Loïc"))  # reads as VNI "Lọc"
        self.assertIsNone(detect_legacy("Hueá"))
        self.assertIs(detect_legacy("ViÖt"), TCVN3)  # a capital inside a word: only TCVN3 does it


vietnamese_letters = st.sampled_from(
    sorted(
        {c for c in text.TCVN3_ENCODE if c.islower()}
        | {c for c in text.VNI_ENCODE if c.islower()}
        | set("abcdeghiklmnopqrstuvxy")
    )
)
syllables = st.sampled_from(
    sorted(
        initial + rhyme
        for initial in ("", "b", "ch", "đ", "gi", "kh", "ngh", "qu", "th", "tr", "v")
        for rhyme in text._RHYMES
        if is_syllable(initial + rhyme)
    )
)
tones = st.sampled_from(text.TONES)


def _toned(syllable: str, tone: str) -> str:
    """Put `tone` where it belongs in `syllable`, or leave it toneless if it cannot carry it."""
    for index in range(len(syllable)):
        candidate = syllable[:index] + syllable[index] + tone + syllable[index + 1 :]
        candidate = unicodedata.normalize("NFC", candidate)
        if is_syllable(candidate):
            return candidate
    return syllable


class LegacyPropertyTests(SynchronousTestCase):
    @settings(max_examples=200)
    @given(
        st.lists(st.tuples(syllables, tones, st.sampled_from(["lower", "title", "upper"]))),
        st.sampled_from([" ", ", ", " - ", "/", " (1) "]),
    )
    def test_vietnamese_unicode_is_never_flagged(
        self, words: list[tuple[str, str, str]], separator: str
    ) -> None:
        phrase = separator.join(
            getattr(_toned(syllable, tone), case)() for syllable, tone, case in words
        )
        self.assertIsNone(detect_legacy(phrase), phrase)

    @given(st.lists(vietnamese_letters | st.just(" ")).map("".join))
    def test_vni_round_trip(self, line: str) -> None:
        self.assertEqual(convert_legacy(encode_legacy(line, VNI), VNI), line)
        self.assertEqual(convert_legacy(encode_legacy(line.upper(), VNI), VNI), line.upper())

    @given(st.lists(vietnamese_letters | st.just(" ")).map("".join))
    def test_tcvn3_round_trip(self, line: str) -> None:
        self.assertEqual(convert_legacy(encode_legacy(line, TCVN3), TCVN3), line)

    @given(st.text(max_size=40))
    def test_any_text_is_handled(self, line: str) -> None:
        result = detect_legacy(line)
        if result is not None:
            self.assertIsInstance(convert_legacy(line, result), str)


class ScanTests(SynchronousTestCase):
    def test_clean_documents(self) -> None:
        self.assertEqual(text.scan(envelope()), ())
        self.assertEqual(text.scan(status()), ())

    def test_legacy_text_is_an_error_with_its_reading(self) -> None:
        findings = text.scan(envelope(subject="B¸o c¸o t×nh h×nh kinh tÕ - x· héi"))
        self.assertEqual(len(findings), 1)
        finding = findings[0]
        self.assertEqual(finding.code, "LegacyEncodingText")
        self.assertEqual(finding.path, f"{H}/Subject")
        self.assertIs(finding.severity, Severity.ERROR)
        self.assertIs(finding.fault, Fault.RULE_VIOLATION)
        self.assertEqual(finding.params["encoding"], "TCVN3")
        self.assertIn("Báo cáo tình hình kinh tế - xã hội", finding.message_en)
        self.assertIn("TCVN3", finding.message_vi)
        self.assertIn("Báo cáo tình hình kinh tế - xã hội", finding.message_vi)

    def test_vni_in_a_status_description(self) -> None:
        packet = attrs.evolve(status(), description="Sai nôi nhaän vaên baûn")
        finding = text.scan(packet)[0]
        self.assertEqual((finding.path, finding.params["encoding"]), (f"{H}/Description", "VNI"))
        self.assertEqual(finding.params["reading"], "Sai nơi nhận văn bản")

    def test_control_and_replacement_characters(self) -> None:
        env = envelope(
            subject="Báo cáo\x07 tháng\x1b 3\n\tđợt 2\r",
            to_places=("H\ufffdi D\ufffd\ufffdng",),
        )
        findings = text.scan(env)
        self.assertEqual(
            [(f.code, f.path, f.params["count"]) for f in findings],
            [
                ("TextControlCharacter", f"{H}/Subject", "2"),
                ("TextReplacementCharacter", f"{H}/ToPlaces/Place[1]", "3"),
            ],
        )
        self.assertIn("U+0007", findings[0].message_en)
        self.assertTrue(all(f.is_error for f in findings))
        c1 = text.scan(envelope(subject="Tiền\x85"))
        self.assertEqual([f.code for f in c1], ["TextControlCharacter"])

    def test_long_readings_are_shortened(self) -> None:
        findings = text.scan(envelope(content="Céng hoµ x· héi chñ nghÜa ViÖt Nam " * 20))
        self.assertLessEqual(len(findings[0].params["reading"]), 200)
        self.assertTrue(findings[0].params["reading"].endswith("…"))
