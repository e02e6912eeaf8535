"""edxml.vxp against docs/vxp.md: the captured HMAC vectors and requests (Appendix A) byte for
byte, Java HashMap order, the lossy hash-file, timestamps, Gson escaping, the server's checks
(one test per refusal), response envelopes, and the streaming getEdoc decoder against
json.loads + base64 as the oracle."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from twisted.trial.unittest import SynchronousTestCase

from edxml import vxp
from edxml.vxp import (
    EdocBodyDecoder,
    VxpAuthError,
    VxpProtocolError,
    VxpTooLarge,
    decode_edoc_body,
)

SECRET = "dummy-secret-ABC"
SYSTEM = "sys.test.01"

# docs/vxp.md §3.4, CAP #5 and CAP #10.
VECTOR_1 = (
    '{"XroadVnpt-systemid":"sys.test.01","XroadVnpt-servicetype":"eDoc","XroadVnpt-messagetype":'
    '"edoc","XroadVnpt-timestamp":"25112026T132359+0522","XroadVnpt-Content-Type":'
    '"application/json"}'
)
HASH_1 = "7184c8dbf7be4b0b127bc364d0aac3ddddac18353b44a70836c8ea177e3bab37"
VECTOR_2 = (
    '{"XroadVnpt-systemid":"sys.test.01","XroadVnpt-docid":"d1","XroadVnpt-timestamp":'
    '"25112026T132359+0612","XroadVnpt-Content-Type":"application/json","XroadVnpt-status":'
    '"done"}'
)
HASH_2 = "850c92c7939cc2d3e4c8f4c80816d7cca9a6e0946d960b29952c874e4cea1156"

A3_FILE = '<?xml version="1.0" encoding="UTF-8"?><edXML>Tiếng Việt</edXML>'.encode()
A3_HASH_FILE = "686bab0fa543fb8bf86432f24944c0e481e81cc01f54705afa7ac146788aaa"


def _capture(text: str) -> list[tuple[str, str]]:
    """The SDK-made header lines of an Appendix A capture (the HTTP stack's own are left out)."""
    stack = {"Content-Length", "Host", "Connection", "Accept-Encoding", "Expect", "Cache-Control"}
    stack |= {"Pragma", "Accept"}
    pairs = []
    for line in text.strip().splitlines():
        name, _, value = line.partition(": ")
        if name not in stack:
            pairs.append((name, value))
    return pairs


A1 = _capture(f"""
XroadVnpt-systemid: sys.test.01
XroadVnpt-servicetype: eDoc
XroadVnpt-messagetype: edoc
XroadVnpt-timestamp: 25112026T132359+0522
Content-Type: application/json
XroadVnpt-Content-Type: application/json
XroadVnpt-sign-header-key: systemid;servicetype;messagetype;timestamp;Content-Type
XroadVnpt-sign-header: {VECTOR_1}
XroadVnpt-hash-header: {HASH_1}
User-Agent: JAVASDKAgent/1.0.0 XRoad/VPCP
XroadVnpt-version: 3.0.201608
Content-Length: 0
Host: 127.0.0.1:18099
Connection: Keep-Alive
Accept-Encoding: gzip,deflate
""")

A2 = _capture(f"""
XroadVnpt-systemid: sys.test.01
XroadVnpt-docid: d1
XroadVnpt-timestamp: 25112026T132359+0612
Content-Type: application/json
XroadVnpt-Content-Type: application/json
XroadVnpt-status: done
XroadVnpt-sign-header-key: systemid;docid;timestamp;Content-Type;status
XroadVnpt-sign-header: {VECTOR_2}
XroadVnpt-hash-header: {HASH_2}
User-Agent: JAVASDKAgent/1.0.0 XRoad/VPCP
XroadVnpt-version: 3.0.201608
Content-Length: 2
Host: 127.0.0.1:18099
Connection: Keep-Alive
Expect: 100-continue
Accept-Encoding: gzip,deflate
""")

A3 = _capture("""
Content-Type: application/octet-stream
XroadVnpt-systemid: sys.test.01
XroadVnpt-servicetype: eDoc
XroadVnpt-messagetype: edoc
XroadVnpt-hash-file: 686bab0fa543fb8bf86432f24944c0e481e81cc01f54705afa7ac146788aaa
XroadVnpt-from: sys.test.01
XroadVnpt-timestamp: 25112026T132359+0553
XroadVnpt-Content-Type: application/octet-stream
XroadVnpt-sign-header-key: systemid;servicetype;messagetype;hash-file;from;timestamp;Content-Type
XroadVnpt-sign-header: {"XroadVnpt-systemid":"sys.test.01","XroadVnpt-servicetype":"eDoc","XroadVnpt-messagetype":"edoc","XroadVnpt-hash-file":"686bab0fa543fb8bf86432f24944c0e481e81cc01f54705afa7ac146788aaa","XroadVnpt-from":"sys.test.01","XroadVnpt-timestamp":"25112026T132359+0553","XroadVnpt-Content-Type":"application/octet-stream"}
XroadVnpt-hash-header: 1dea9aa3f5289d25ecc137108ac21346249a3d12b493f028dccef05724ddb8cb
User-Agent: JAVASDKAgent/1.0.0 XRoad/VPCP
XroadVnpt-version: 3.0.201608
Cache-Control: no-cache
Pragma: no-cache
Host: 127.0.0.1:18099
Accept: text/html, image/gif, image/jpeg, */*; q=0.2
Connection: keep-alive
Content-Length: 69
""")  # noqa: E501 (the capture's lines, verbatim)


def sign(params: dict[str, str], **kw: Any) -> vxp.SignedRequest:
    options: dict[str, Any] = {
        "system_id": SYSTEM,
        "secret": SECRET,
        "timestamp": "25112026T132359+0522",
        "content_type": vxp.JSON_TYPE,
    }
    options.update(kw)
    return vxp.sign_request(params, **options)


class SignatureVectorTests(SynchronousTestCase):
    def test_captured_hmac_vectors(self) -> None:
        self.assertEqual(vxp.hash_header(SECRET, VECTOR_1), HASH_1)
        self.assertEqual(vxp.hash_header(SECRET.encode(), VECTOR_2), HASH_2)

    def test_sign_header_json_reproduces_the_captured_text(self) -> None:
        pairs = [
            ("XroadVnpt-systemid", "sys.test.01"),
            ("XroadVnpt-docid", "d1"),
            ("XroadVnpt-timestamp", "25112026T132359+0612"),
            ("XroadVnpt-Content-Type", "application/json"),
            ("XroadVnpt-status", "done"),
        ]
        self.assertEqual(vxp.sign_header_json(pairs), VECTOR_2)

    def test_a1_get_received_edoc_list(self) -> None:
        signed = sign({"servicetype": "eDoc", "messagetype": "edoc"})
        self.assertEqual(list(signed.headers), A1)
        self.assertEqual(signed.hash_header, HASH_1)

    def test_a2_update_status(self) -> None:
        signed = sign({"docid": "d1", "status": "done"}, timestamp="25112026T132359+0612")
        self.assertEqual(list(signed.headers), A2)

    def test_a3_send_edoc(self) -> None:
        params = {
            "from": SYSTEM,
            "servicetype": "eDoc",
            "messagetype": "edoc",
            "hash-file": vxp.lossy_hash_file(A3_FILE),
        }
        signed = sign(params, timestamp="25112026T132359+0553", content_type=vxp.OCTET_STREAM)
        self.assertEqual(list(signed.headers), A3)
        self.assertEqual(signed.header("xroadvnpt-hash-file"), A3_HASH_FILE)

    def test_the_to_parameter_travels_as_its_json_text(self) -> None:
        params = {
            "from": SYSTEM,
            "servicetype": "eDoc",
            "messagetype": "edoc",
            "to": '[{"code":"B.02"}]',
            "hash-file": "ab",
        }
        signed = sign(params, content_type=vxp.OCTET_STREAM)
        self.assertEqual(
            signed.sign_header_key,
            "systemid;servicetype;messagetype;hash-file;from;to;timestamp;Content-Type",
        )
        self.assertIn('"XroadVnpt-to":"[{\\"code\\":\\"B.02\\"}]"', signed.sign_header)


class OrderTests(SynchronousTestCase):
    # (SDK puts in order: timestamp, systemid, Content-Type, then the caller's keys) -> captured.
    CAPTURED: ClassVar[list[tuple[list[str], str]]] = [
        ([], "systemid;timestamp;Content-Type"),
        (["servicetype", "messagetype"], "systemid;servicetype;messagetype;timestamp;Content-Type"),
        (
            ["from", "servicetype", "messagetype", "to", "hash-file"],
            "systemid;servicetype;messagetype;hash-file;from;to;timestamp;Content-Type",
        ),
        (
            ["from", "servicetype", "messagetype", "hash-file"],
            "systemid;servicetype;messagetype;hash-file;from;timestamp;Content-Type",
        ),
        (["docid", "status"], "systemid;docid;timestamp;Content-Type;status"),
        (["status", "docid"], "systemid;docid;timestamp;Content-Type;status"),
    ]

    def test_captured_orders(self) -> None:
        for caller_keys, expected in self.CAPTURED:
            keys = ["timestamp", "systemid", "Content-Type", *caller_keys]
            self.assertEqual(";".join(vxp.java_hashmap_order(keys)), expected)

    def test_java_string_hash(self) -> None:
        self.assertEqual(vxp.java_string_hash(""), 0)
        self.assertEqual(vxp.java_string_hash("hello"), 99162322)
        self.assertEqual(vxp.java_string_hash("polygenelubricants"), 0x80000000)  # MIN_VALUE
        self.assertEqual(vxp.java_string_hash("Aa"), vxp.java_string_hash("BB"))

    def test_colliding_keys_keep_their_insertion_order(self) -> None:
        self.assertEqual(vxp.java_hashmap_order(["BB", "Aa"]), ["BB", "Aa"])
        self.assertEqual(vxp.java_hashmap_order(["Aa", "BB"]), ["Aa", "BB"])
        self.assertEqual(vxp.java_hashmap_order(["b", "a", "b"]), ["a", "b"])

    def test_the_table_grows_past_twelve_entries(self) -> None:
        # "q" (113) and "a" (97) share bucket 1 of 16 but not of 32 (17 and 1).
        self.assertEqual(vxp.java_hashmap_order(["q", "a"]), ["q", "a"])
        fillers = [chr(c) for c in range(ord("b"), ord("m"))]  # 11 more: 13 > 0.75 x 16
        self.assertEqual(vxp.java_hashmap_order(["q", "a", *fillers]), ["a", *fillers, "q"])
        self.assertEqual(vxp.java_hashmap_order(["q", "a", *fillers[:-1]])[:2], ["q", "a"])


class HashFileTests(SynchronousTestCase):
    def test_vectors(self) -> None:
        self.assertEqual(
            vxp.lossy_hash_file(b"abc"),
            "ba7816bf8f1cfea414140de5dae2223b0361a396177a9cb410ff61f2015ad",
        )
        self.assertEqual(len(A3_FILE), 67)
        self.assertEqual(vxp.lossy_hash_file(A3_FILE), A3_HASH_FILE)

    def test_matches_accepts_lossy_and_correct_hex(self) -> None:
        correct = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        self.assertTrue(vxp.hash_file_matches(b"abc", vxp.lossy_hash_file(b"abc")))
        self.assertTrue(vxp.hash_file_matches(b"abc", correct))
        self.assertTrue(vxp.hash_file_matches(b"abc", correct.upper()))
        self.assertFalse(vxp.hash_file_matches(b"abd", correct))
        self.assertFalse(vxp.hash_file_matches(b"abc", "đ" + correct))


class TimestampTests(SynchronousTestCase):
    def test_format_in_vietnam_time_whatever_the_zone(self) -> None:
        utc = dt.datetime(2026, 11, 25, 6, 23, 59, 522_999, tzinfo=dt.UTC)
        self.assertEqual(vxp.format_timestamp(utc), "25112026T132359+0522")
        paris = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
        self.assertEqual(vxp.format_timestamp(paris), "25112026T132359+0522")
        self.assertEqual(
            vxp.format_timestamp(dt.datetime(2026, 1, 2, 3, 4, 5, 6_000, tzinfo=vxp.VIETNAM)),
            "02012026T030405+0006",
        )
        with self.assertRaises(ValueError):
            vxp.format_timestamp(dt.datetime(2026, 1, 1))

    def test_parse(self) -> None:
        moment = vxp.parse_timestamp("25112026T132359+0522")
        self.assertEqual(moment, dt.datetime(2026, 11, 25, 6, 23, 59, 522_000, tzinfo=dt.UTC))
        self.assertEqual(moment.utcoffset(), dt.timedelta(hours=7))
        self.assertEqual(vxp.format_timestamp(moment), "25112026T132359+0522")
        for bad in ("", "25112026T132359", "2026-11-25T13:23:59+07:00", "32112026T132359+0522"):
            with self.assertRaises(VxpProtocolError):
                vxp.parse_timestamp(bad)
        with self.assertRaises(VxpProtocolError) as caught:
            vxp.parse_timestamp("25112026T132359+1000")
        self.assertIn("dấu thời gian", caught.exception.message_vi)


class GsonTests(SynchronousTestCase):
    def test_escapes_quotes_backslashes_and_controls_only(self) -> None:
        self.assertEqual(vxp.gson_string('a"b\\c'), '"a\\"b\\\\c"')
        self.assertEqual(vxp.gson_string("\t\b\n\r\f"), '"\\t\\b\\n\\r\\f"')
        self.assertEqual(vxp.gson_string("\x00\x1f"), '"\\u0000\\u001f"')
        self.assertEqual(vxp.gson_string("<a href='x'>&=</a>"), "\"<a href='x'>&=</a>\"")
        self.assertEqual(vxp.gson_string("Đơn vị \x7f"), '"Đơn vị \x7f"')
        self.assertEqual(vxp.gson_string("\u2028\u2029"), '"\\u2028\\u2029"')
        self.assertEqual(vxp.gson_string("a/b"), '"a/b"')

    def test_output_is_json(self) -> None:
        text = 'x"\\\x01\n<>Ứ\u2028'
        self.assertEqual(json.loads(vxp.gson_string(text)), text)

    def test_parameters_must_be_ascii_and_header_safe(self) -> None:
        for value in ("Đơn", "a\nb", "a\x00"):
            with self.assertRaises(VxpProtocolError):
                sign({"description": value})
        for key in ("systemid", "Timestamp", "content-type", "sign-header", "bad key", "ứ"):
            with self.assertRaises(VxpProtocolError):
                sign({key: "x"})
        with self.assertRaises(VxpProtocolError):
            sign({"docId": "1", "docid": "1"})


class VerifyTests(SynchronousTestCase):
    def secrets(self, system_id: str) -> bytes | None:
        return {SYSTEM: SECRET.encode(), "sys.other": SECRET.encode()}.get(system_id)

    def headers(self, signed: vxp.SignedRequest) -> dict[str, str]:
        return dict(signed.headers)

    def refused(self, headers: dict[str, str], reason: str) -> VxpAuthError:
        with self.assertRaises(VxpAuthError) as caught:
            vxp.verify_request(headers, self.secrets)
        self.assertEqual(caught.exception.reason, reason)
        self.assertTrue(caught.exception.message_en)
        self.assertTrue(caught.exception.message_vi)
        return caught.exception

    def resigned(self, headers: dict[str, str], sign_header: str, key: str | None = None) -> None:
        headers["XroadVnpt-sign-header"] = sign_header
        headers["XroadVnpt-hash-header"] = vxp.hash_header(SECRET, sign_header)
        if key is not None:
            headers["XroadVnpt-sign-header-key"] = key

    def test_accepts_what_sign_request_makes(self) -> None:
        signed = sign({"docId": "d1", "status": "done", "filePath": "/tmp/x"})
        verified = vxp.verify_request(self.headers(signed), self.secrets)
        self.assertEqual(verified.system_id, SYSTEM)
        self.assertEqual(verified.params["docId"], "d1")
        self.assertNotIn("docid", verified.params)
        self.assertEqual(verified.param("DOCID"), "d1")
        self.assertEqual(verified.timestamp, "25112026T132359+0522")
        self.assertEqual(verified.params["Content-Type"], "application/json")

    def test_accepts_a_lookup_function_any_order_and_uppercase_hex(self) -> None:
        headers = {k.lower(): v for k, v in sign({"status": "done"}).headers}
        members = json.loads(headers["xroadvnpt-sign-header"])
        reordered = json.dumps(dict(reversed(list(members.items()))), separators=(",", ":"))
        headers["xroadvnpt-sign-header"] = reordered
        headers["xroadvnpt-hash-header"] = vxp.hash_header(SECRET, reordered).upper()
        headers["xroadvnpt-unsigned-extra"] = "ignored"
        verified = vxp.verify_request(lambda name: headers.get(name.lower()), self.secrets)
        self.assertEqual(verified.param("status"), "done")
        self.assertNotIn("unsigned-extra", verified.params)

    def test_refuses_a_missing_signature_header(self) -> None:
        headers = self.headers(sign({}))
        del headers["XroadVnpt-hash-header"]
        self.refused(headers, "missing_header")

    def test_refuses_an_unknown_system(self) -> None:
        headers = self.headers(sign({}, system_id="sys.unknown"))
        self.refused(headers, "unknown_system")

    def test_refuses_a_wrong_secret(self) -> None:
        error = self.refused(self.headers(sign({}, secret="not-the-secret")), "hash_mismatch")
        self.assertIn("hash-header", error.message_en)

    def test_refuses_an_altered_sign_header(self) -> None:
        headers = self.headers(sign({"status": "done"}))
        headers["XroadVnpt-sign-header"] = headers["XroadVnpt-sign-header"].replace("done", "fail")
        headers["XroadVnpt-status"] = "fail"
        self.refused(headers, "hash_mismatch")

    def test_refuses_a_sign_header_that_is_not_json(self) -> None:
        headers = self.headers(sign({}))
        self.resigned(headers, "{not json")
        self.refused(headers, "sign_header_not_json")

    def test_refuses_a_sign_header_that_is_not_an_object_of_strings(self) -> None:
        for text in ('["XroadVnpt-systemid"]', '{"XroadVnpt-systemid":1}', '{"systemid":"x"}'):
            headers = self.headers(sign({}))
            self.resigned(headers, text)
            self.refused(headers, "sign_header_not_json")
        headers = self.headers(sign({}))
        self.resigned(headers, '{"XroadVnpt-systemid":"a","XroadVnpt-systemid":"a"}')
        self.refused(headers, "sign_header_not_json")

    def test_refuses_a_key_list_naming_other_members(self) -> None:
        headers = self.headers(sign({"status": "done"}))
        headers["XroadVnpt-sign-header-key"] = "systemid;timestamp;Content-Type"
        self.refused(headers, "sign_header_key_mismatch")

    def test_refuses_a_header_that_differs_from_its_signed_value(self) -> None:
        headers = self.headers(sign({"docid": "d1", "status": "done"}))
        headers["XroadVnpt-docid"] = "d2"
        self.refused(headers, "signed_header_differs")
        del headers["XroadVnpt-docid"]
        self.refused(headers, "signed_header_differs")

    def test_refuses_a_signed_system_id_other_than_the_header(self) -> None:
        headers = self.headers(sign({}))
        headers["XroadVnpt-systemid"] = "sys.other"  # same secret, so the HMAC still holds
        self.refused(headers, "system_id_differs")

    def test_freshness_only_when_asked(self) -> None:
        headers = self.headers(sign({}))  # 25 Nov 2026
        long_after = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
        vxp.verify_request(headers, self.secrets)
        with self.assertRaises(VxpAuthError) as caught:
            vxp.verify_request(
                headers, self.secrets, max_age=dt.timedelta(minutes=5), now=long_after
            )
        self.assertEqual(caught.exception.reason, "stale")
        near = dt.datetime(2026, 11, 25, 6, 25, tzinfo=dt.UTC)
        vxp.verify_request(headers, self.secrets, max_age=dt.timedelta(minutes=5), now=near)
        bad = self.headers(sign({}, timestamp="yesterday"))
        with self.assertRaises(VxpAuthError) as caught:
            vxp.verify_request(bad, self.secrets, max_age=dt.timedelta(minutes=5), now=near)
        self.assertEqual(caught.exception.reason, "timestamp_unreadable")


class ResponseTests(SynchronousTestCase):
    def test_error_code_as_string_or_number(self) -> None:
        for code in ('"0"', "0"):
            body = f'{{"status":"OK","ErrorCode":{code},"ErrorDesc":"Thanh cong","count":2}}'
            response = vxp.parse_response(body.encode(), "countReceiveEdoc")
            self.assertTrue(response.ok)
            self.assertEqual(response.error_code, "0")
            self.assertEqual(response.fields, {"count": 2})

    def test_fail(self) -> None:
        body = b'{"status":"FAIL","ErrorCode":"-1","ErrorDesc":"Don vi gui x","DocId":""}'
        response = vxp.parse_response(body, "sendEdoc")
        self.assertFalse(response.ok)
        self.assertEqual((response.error_code, response.error_desc), ("-1", "Don vi gui x"))
        odd = vxp.parse_response(b'{"status":"OK","ErrorCode":"7","ErrorDesc":"?"}', "x")
        self.assertFalse(odd.ok)

    def test_not_our_json_is_a_protocol_error(self) -> None:
        for body in (
            b"<html><body>500</body></html>",
            b"",
            b"[]",
            b'"OK"',
            b'{"ErrorCode":"0"}',
            b'{"status":"OK","ErrorDesc":"x"}',
            b'{"status":"OK","ErrorCode":true}',
            b"[" * 100_000,
        ):
            with self.assertRaises(VxpProtocolError):
                vxp.parse_response(body, "getReceivedEdocList")

    def test_ok_without_the_operations_payload(self) -> None:
        base = '"status":"OK","ErrorCode":"0","ErrorDesc":"Thanh cong"'
        for op, extra in (
            ("sendEdoc", ""),
            ("sendEdoc", ',"DocId":""'),
            ("getEdoc", ',"data":null'),
            ("countReceiveEdoc", ""),
            ("getReceivedEdocList", ',"data":{}'),
        ):
            with self.assertRaises(VxpProtocolError, msg=op):
                vxp.parse_response(f"{{{base}{extra}}}".encode(), op)
        self.assertEqual(
            vxp.listed_items(vxp.parse_response(f"{{{base}}}".encode(), "getReceivedEdocList")),
            (),
        )

    def test_listed_items_skip_what_they_cannot_read(self) -> None:
        body = {
            "status": "OK",
            "ErrorCode": "0",
            "ErrorDesc": "Thanh cong",
            "data": [
                {
                    "docId": "d1",
                    "serviceType": "eDoc",
                    "messageType": "edoc",
                    "created_time": "2026-11-25 13:23:59",
                    "from": "000.00.00.A01",
                    "to": "000.00.00.B02",
                    "status": "initial",
                    "status_desc": "Khoi tao",
                },
                "not an object",
                {"serviceType": "eDoc"},
                {"docId": 42, "from": ["x"], "status": True},
                None,
            ],
        }
        items = vxp.listed_items(vxp.parse_response(json.dumps(body).encode(), "x"))
        self.assertEqual([i.doc_id for i in items], ["d1", "42"])
        self.assertEqual(items[0].to, "000.00.00.B02")
        self.assertEqual(items[0].created_time, "2026-11-25 13:23:59")
        self.assertIsNone(items[0].updated_time)
        self.assertIsNone(items[1].from_)
        self.assertEqual(items[1].status, "true")

    def test_agencies(self) -> None:
        body = vxp.response_json(
            True,
            "0",
            "Thanh cong",
            data=[
                {"id": "1", "pid": "", "code": "000.00.00.H23", "name": "UBND", "oldCode": "H23"},
                {"id": "2", "name": "no code"},
            ],
        )
        (agency,) = vxp.agencies(vxp.parse_response(body, "getAgenciesList"))
        self.assertEqual(agency, vxp.Agency("000.00.00.H23", "UBND", "1", "", None, "H23"))

    def test_response_json_is_ascii_with_the_base_fields(self) -> None:
        body = vxp.response_json(False, "-1", "Không thấy", DocId="")
        self.assertTrue(body.isascii())
        self.assertEqual(
            json.loads(body),
            {"status": "FAIL", "ErrorCode": "-1", "ErrorDesc": "Không thấy", "DocId": ""},
        )
        self.assertTrue(body.startswith(b'{"status":"FAIL","ErrorCode":"-1","ErrorDesc":'))

    def test_ascii_fold(self) -> None:
        self.assertEqual(vxp.ascii_fold("Thành công, Đơn vị đã nhận"), "Thanh cong, Don vi da nhan")
        self.assertEqual(vxp.ascii_fold("漢"), "?")


# --------------------------------------------------------------------------------- decoder


def oracle(body: bytes) -> tuple[dict[str, Any], bytes]:
    obj = json.loads(body, strict=False)
    text = "".join(obj.get("data", "").split())
    text += "=" * (-len(text) % 4)
    return obj, base64.b64decode(text)


@st.composite
def edoc_bodies(draw: st.DrawFn) -> bytes:
    payload = draw(st.binary(max_size=2000))
    text = base64.b64encode(payload).decode("ascii")
    if draw(st.booleans()):
        text = text.rstrip("=")
    width = draw(st.sampled_from([0, 4, 19, 76]))
    breaks = draw(st.sampled_from(["\\n", "\\r\\n", "\n", "\r\n", " "]))
    if width:
        text = breaks.join(text[i : i + width] for i in range(0, len(text), width))
    if draw(st.booleans()):
        text = text.replace("/", "\\/")
    code = draw(st.sampled_from(['"0"', "0"]))
    desc = draw(st.text(max_size=30))
    members = [
        '"status":"OK"',
        f'"ErrorCode":{code}',
        f'"ErrorDesc":{json.dumps(desc, ensure_ascii=draw(st.booleans()))}',
        f'"data":"{text}"',
    ]
    if draw(st.booleans()):
        members.append('"extra":{"a":[1,"}",{"b":null}],"c":"\\"x,"}')
    members = draw(st.permutations(members))
    space = draw(st.sampled_from(["", " ", "\n  ", "\t"]))
    inner = f"{space},{space}".join(m.replace(":", f"{space}:{space}", 1) for m in members)
    return f"{space}{{{space}{inner}{space}}}{space}".encode()


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(body)]:
        pieces.append(body[start:point])
        start = point
    return pieces


class EdocBodyDecoderTests(SynchronousTestCase):
    @settings(max_examples=300)
    @given(edoc_bodies(), st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
    def test_matches_json_and_base64_for_any_chunking(self, body: bytes, cuts: list[int]) -> None:
        expected_obj, expected = oracle(body)
        decoder = EdocBodyDecoder(max_bytes=10_000)
        for piece in chunked(body, cuts):
            decoder.feed(piece)
        response, data = decoder.finish()
        self.assertEqual(data, expected)
        self.assertTrue(response.ok)
        self.assertEqual(response.error_desc, expected_obj["ErrorDesc"])
        self.assertEqual(response.fields.get("extra"), expected_obj.get("extra"))
        self.assertNotIn("data", response.fields)

    @settings(max_examples=50)
    @given(st.binary(min_size=1, max_size=300))
    def test_byte_by_byte(self, payload: bytes) -> None:
        body = vxp.response_json(True, "0", "x", data=base64.b64encode(payload).decode())
        decoder = EdocBodyDecoder(max_bytes=1000)
        for i in range(len(body)):
            decoder.feed(body[i : i + 1])
        self.assertEqual(decoder.finish()[1], payload)

    def test_a_large_document_in_network_sized_chunks(self) -> None:
        payload = bytes(range(256)) * 8192  # 2 MiB
        body = vxp.response_json(True, "0", "ok", data=base64.b64encode(payload).decode())
        decoder = EdocBodyDecoder(max_bytes=len(payload))
        for start in range(0, len(body), 16_384):
            decoder.feed(body[start : start + 16_384])
        self.assertEqual(decoder.finish()[1], payload)
        self.assertEqual(decoder.size, len(payload))

    def test_fail_with_empty_or_missing_data(self) -> None:
        for body in (
            b'{"status":"FAIL","ErrorCode":"-1","ErrorDesc":"Van ban chua san sang","data":""}',
            b'{"status":"FAIL","ErrorCode":"-1","ErrorDesc":"x"}',
            b'{"data":null,"status":"FAIL","ErrorCode":-1,"ErrorDesc":"x"}',
        ):
            response, data = decode_edoc_body(body, max_bytes=10)
            self.assertFalse(response.ok)
            self.assertEqual(data, b"")

    def test_ok_without_data_is_a_protocol_error(self) -> None:
        for body in (
            b'{"status":"OK","ErrorCode":"0","ErrorDesc":"x"}',
            b'{"status":"OK","ErrorCode":"0","ErrorDesc":"x","data":null}',
        ):
            with self.assertRaises(VxpProtocolError):
                decode_edoc_body(body, max_bytes=10)

    def test_too_large(self) -> None:
        body = vxp.response_json(True, "0", "x", data=base64.b64encode(b"x" * 100).decode())
        with self.assertRaises(VxpTooLarge) as caught:
            decode_edoc_body(body, max_bytes=99)
        self.assertEqual(caught.exception.limit, 99)
        self.assertIn("giới hạn", caught.exception.message_vi)
        self.assertEqual(decode_edoc_body(body, max_bytes=100)[1], b"x" * 100)

    def test_errors(self) -> None:
        bad = {
            "an HTML page": b"<html><body>Internal Server Error</body></html>",
            "cut short": b'{"status":"OK","ErrorCode":"0","data":"QUJD',
            "cut after the object": b'{"status":"OK","ErrorCode":"0","data":"QUJD"',
            "unicode escape in data": b'{"status":"OK","ErrorCode":"0","data":"QUJ\\u0044"}',
            "tab escape in data": b'{"status":"OK","ErrorCode":"0","data":"QU\\tJD"}',
            "not base64": b'{"status":"OK","ErrorCode":"0","data":"QU!D"}',
            "non-ASCII in data": '{"status":"OK","ErrorCode":"0","data":"QUĐD"}'.encode(),
            "data after padding": b'{"status":"OK","ErrorCode":"0","data":"QQ==QUJD"}',
            "one char left": b'{"status":"OK","ErrorCode":"0","data":"QUJDR"}',
            "padding alone": b'{"status":"OK","ErrorCode":"0","data":"QUJD="}',
            "data twice": b'{"status":"OK","ErrorCode":"0","data":"QUJD","data":"QUJD"}',
            "key twice": b'{"status":"OK","status":"OK","ErrorCode":"0","data":""}',
            "garbage after": b'{"status":"OK","ErrorCode":"0","data":"QUJD"} x',
            "trailing comma": b'{"status":"OK","ErrorCode":"0","data":"QUJD",}',
            "bad value": b'{"status":OK,"ErrorCode":"0","data":"QUJD"}',
            "no colon": b'{"status" "OK"}',
            "no status": b'{"ErrorCode":"0","data":"QUJD"}',
        }
        for what, body in bad.items():
            with self.assertRaises(VxpProtocolError, msg=what):
                decode_edoc_body(body, max_bytes=100)

    def test_padding_split_across_chunks(self) -> None:
        decoder = EdocBodyDecoder(max_bytes=10)
        for piece in (b'{"data":"QQ', b"=", b'=","status":"OK","ErrorCode":"0"}'):
            decoder.feed(piece)
        self.assertEqual(decoder.finish()[1], b"A")

    def test_text_around_the_document_is_bounded(self) -> None:
        decoder = EdocBodyDecoder(max_bytes=10, max_other_bytes=100)
        with self.assertRaises(VxpProtocolError):
            decoder.feed(b"{" + b" " * 200)
