"""The streaming canonicaliser against libxml2's C14N, and its bounded pieces."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from twisted.trial.unittest import SynchronousTestCase

from edxml import c14n

URIS = ["urn:a", "urn:b", "http://www.w3.org/2000/09/xmldsig#"]
PREFIXES = ["", "a", "b", "ds"]
TEXT = st.text(
    st.sampled_from([*list("ab ạ\t\n\r&<>\"'"), "😀"]),
    max_size=6,
)


def _ns(prefix: str, uri: str) -> str:
    return f' xmlns="{uri}"' if not prefix else f' xmlns:{prefix}="{uri}"'


def _esc(text: str, quote: bool = False) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = out.replace("\r", "&#13;")
    return out.replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;") if quote else out


@st.composite
def documents(draw: st.DrawFn, depth: int = 0) -> str:
    """A random element: prefixes bound (often redundantly) to few URIs, mixed content."""
    declared = draw(
        st.lists(st.tuples(st.sampled_from(PREFIXES), st.sampled_from([*URIS, ""])), max_size=2)
    )
    decl: dict[str, str] = {}
    for prefix, uri in declared:
        if uri or not prefix:  # xmlns:p="" is not XML 1.0
            decl[prefix] = uri
    # Every prefix the element or attributes use is declared here, so the document is well-formed.
    prefix = draw(st.sampled_from([p for p in decl if p and decl[p]] + [""]))
    name = f"{prefix}:e" if prefix else "e"
    attrs: dict[str, str] = {}
    expanded: set[tuple[str, str]] = set()
    for attr_prefix in draw(
        st.lists(st.sampled_from([p for p in decl if p and decl[p]] + ["", "xml"]), max_size=3)
    ):
        local = draw(st.sampled_from(["x", "y", "lang"]))
        # Two prefixes of one URI name the same attribute: XML forbids it twice on an element.
        uri = "xml" if attr_prefix == "xml" else decl.get(attr_prefix, "") if attr_prefix else ""
        if (uri, local) in expanded:
            continue
        expanded.add((uri, local))
        key = f"{attr_prefix}:{local}" if attr_prefix else local
        attrs[key] = draw(TEXT)
    start = f"<{name}" + "".join(_ns(p, u) for p, u in decl.items())
    start += "".join(f' {k}="{_esc(v, True)}"' for k, v in attrs.items()) + ">"
    parts = [start, _esc(draw(TEXT))]
    if depth < 3:
        for kind in draw(st.lists(st.sampled_from(["el", "pi", "comment"]), max_size=3)):
            if kind == "el":
                parts.append(draw(documents(depth + 1)))
            elif kind == "pi":
                parts.append(f"<?p{draw(st.sampled_from(['', ' d', ' d e']))}?>")
            else:
                parts.append("<!--c-->")
            parts.append(_esc(draw(TEXT)))
    parts.append(f"</{name}>")
    return "".join(parts)


def libxml2(root: etree._Element, exclusive: bool, prefixes: list[str]) -> bytes:
    out = io.BytesIO()
    etree.ElementTree(root).write_c14n(
        out, exclusive=exclusive, with_comments=False, inclusive_ns_prefixes=prefixes or None
    )
    return out.getvalue()


def ours(root: etree._Element, exclusive: bool, prefixes: list[str], **kw: object) -> bytes:
    out = io.BytesIO()
    c14n.write_document(root, out, exclusive=exclusive, inclusive_prefixes=prefixes, **kw)  # type: ignore[arg-type]
    return out.getvalue()


class _Pieces:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.data = io.BytesIO()

    def write(self, data: bytes) -> None:
        self.sizes.append(len(data))
        self.data.write(data)


class AgainstLibxml2Tests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(
        body=documents(),
        exclusive=st.booleans(),
        prefixes=st.lists(st.sampled_from(["a", "b", "ds", "zz"]), max_size=2, unique=True),
        before=st.sampled_from(["", "<?top x?>", "<!--c--><?top?>"]),
        after=st.sampled_from(["", "<?end?>", "<!--c-->"]),
    )
    def test_same_bytes_as_libxml2(
        self, body: str, exclusive: bool, prefixes: list[str], before: str, after: str
    ) -> None:
        root = etree.fromstring(f"{before}{body}{after}".encode())
        prefixes = prefixes if exclusive else []
        self.assertEqual(ours(root, exclusive, prefixes), libxml2(root, exclusive, prefixes))

    @settings(max_examples=100, deadline=None)
    @given(body=documents(), exclusive=st.booleans())
    def test_excluded_subtree_keeps_its_tail(self, body: str, exclusive: bool) -> None:
        root = etree.fromstring(f"<r>h<x><y/>in</x>tail{body}</r>".encode())
        excluded = root[0]
        expected_root = etree.fromstring(f"<r>htail{body}</r>".encode())
        got = ours(root, exclusive, [], exclude=excluded)
        self.assertEqual(got, libxml2(expected_root, exclusive, []))

    def test_redundant_prefixes_keep_the_written_one(self) -> None:
        data = b'<r xmlns:q="urn:y" xmlns:p="urn:y"><a p:x="1" q:y="2"/><q:z/><p:z/></r>'
        root = etree.fromstring(data)
        self.assertEqual(
            ours(root, False, []),
            b'<r xmlns:p="urn:y" xmlns:q="urn:y"><a p:x="1" q:y="2"></a><q:z></q:z><p:z></p:z></r>',
        )
        for exclusive in (False, True):
            self.assertEqual(ours(root, exclusive, []), libxml2(root, exclusive, []))

    def test_default_token_follows_the_exclusive_c14n_recommendation(self) -> None:
        # libxml2 ignores "#default"; exc-c14n §3 renders the default namespace for it.
        root = etree.fromstring(b'<p:r xmlns:p="urn:x" xmlns="urn:d"><p:a/></p:r>')
        self.assertEqual(
            ours(root, True, ["#default"]), b'<p:r xmlns="urn:d" xmlns:p="urn:x"><p:a></p:a></p:r>'
        )
        self.assertEqual(ours(root, True, []), b'<p:r xmlns:p="urn:x"><p:a></p:a></p:r>')

    def test_big_text_goes_out_in_bounded_pieces(self) -> None:
        text = "QUJD&<\r" * (3 * c14n.CHUNK // 7 + 11)
        root = etree.Element("r")
        root.text = text
        sink = _Pieces()
        c14n.write_document(root, sink, exclusive=True)
        self.assertEqual(sink.data.getvalue(), libxml2(root, True, []))
        # Escaping can at most make 5 bytes of one character ("&amp;" and "&#xD;").
        self.assertLessEqual(max(sink.sizes), 5 * c14n.CHUNK)
        self.assertGreater(len(sink.sizes), 3)

    def test_only_a_document_root(self) -> None:
        root = etree.fromstring(b"<r><a/></r>")
        self.assertRaises(ValueError, c14n.write_document, root[0], io.BytesIO(), exclusive=True)


class SubtreeTests(SynchronousTestCase):
    DATA = (
        b'<r xmlns="urn:d" xmlns:a="urn:a" xml:lang="vi" xml:base="http://x/">'
        b'<a:x xml:space="preserve"><s:S xmlns:s="urn:s"><s:I a:k="1">t</s:I></s:S></a:x></r>'
    )

    def test_inclusive_carries_ancestor_namespaces_and_xml_attributes(self) -> None:
        root = etree.fromstring(self.DATA)
        node = root.find(".//{urn:s}I")
        assert node is not None
        self.assertEqual(
            c14n.subtree(node, exclusive=False, with_comments=False),
            # Attributes sort by namespace URI: the XML namespace's http://… before urn:a.
            b'<s:I xmlns="urn:d" xmlns:a="urn:a" xmlns:s="urn:s" xml:base="http://x/"'
            b' xml:lang="vi" xml:space="preserve" a:k="1">t</s:I>',
        )
        self.assertEqual(dict(node.attrib), {"{urn:a}k": "1"})  # put back as it was

    def test_exclusive_carries_only_what_is_used(self) -> None:
        root = etree.fromstring(self.DATA)
        node = root.find(".//{urn:s}I")
        assert node is not None
        self.assertEqual(
            c14n.subtree(node, exclusive=True, with_comments=False),
            b'<s:I xmlns:a="urn:a" xmlns:s="urn:s" a:k="1">t</s:I>',
        )

    def test_c14n_11_refuses_an_inherited_base(self) -> None:
        root = etree.fromstring(self.DATA)
        node = root.find(".//{urn:s}I")
        assert node is not None
        self.assertRaises(
            ValueError, c14n.subtree, node, exclusive=False, with_comments=False, version11=True
        )
