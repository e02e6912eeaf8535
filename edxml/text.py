"""Unicode checks of every text field (R3): legacy TCVN3/VNI mojibake, control and replacement
characters.

Text typed in a `.VnTime` (TCVN3, "ABC") or `VNI-Times` font and copied into a Unicode system
arrives as Latin-1 look-alikes: `Céng hoµ x· héi chñ nghÜa ViÖt Nam`, `Coäng hoøa xaõ hoäi chuû
nghóa Vieät Nam`. Such text must never be stored as if it were Vietnamese. Detection works word by
word: a word is suspect when it is not a Vietnamese syllable as written but becomes one once read
through the legacy table. Correct Unicode Vietnamese is a syllable as written, and English,
French or German words seldom turn into one, so the two can be told apart without a dictionary; a
text is flagged when several distinct words, and a fair share of its Latin-1 words, agree.
(`TextNotNfc` is the reader's: only it sees the text before the model normalises it.)
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import attrs

from edxml.findings import Fault, Finding, FindingCode, Severity
from edxml.model import (
    Business,
    BusinessDocumentInfo,
    Envelope,
    MessageHeader,
    OtherInfo,
    ReplacementInfo,
    StatusPacket,
    TraceHeaderList,
)

# --- generic walker ---------------------------------------------------------------------------

# Where a model field's element name is not simply its CamelCase, or the field stands for a list
# element inside a wrapper (`ToPlaces/Place`), the edXML name is given here.
_ELEMENT_NAMES: dict[tuple[type, str], str] = {
    (Envelope, "header"): "edXMLEnvelope/edXMLHeader/MessageHeader",
    (Envelope, "trace"): "edXMLEnvelope/edXMLHeader/TraceHeaderList",
    (Envelope, "manifest"): "edXMLEnvelope/edXMLBody/edXMLManifest/Reference",
    (Envelope, "attachments"): "AttachmentEncoded/Attachment",
    (MessageHeader, "to_places"): "ToPlaces/Place",
    (OtherInfo, "appendixes"): "Appendixes/Appendix",
    (TraceHeaderList, "traces"): "TraceHeader",
    (TraceHeaderList, "business"): "Bussiness",
    (TraceHeaderList, "id"): "@id",
    (Business, "doc_type"): "BussinessDocType",
    (Business, "reason"): "BussinessDocReason",
    (Business, "document_info"): "BussinessDocumentInfo",
    (Business, "replacements"): "ReplacementInfoList/ReplacementInfo",
    (BusinessDocumentInfo, "receivers"): "ReceiverList/Receiver",
    (ReplacementInfo, "organ_ids"): "OrganIdList/OrganId",
}

# Paths of findings are the reader's: from the root's children down, by element name, repeated
# elements numbered from 1. AttachmentEncoded is counted as one list, as the model keeps it.
HEADER_PATH = "/edXMLEnvelope/edXMLHeader/MessageHeader"
TRACE_PATH = "/edXMLEnvelope/edXMLHeader/TraceHeaderList"
MANIFEST_PATH = "/edXMLEnvelope/edXMLBody/edXMLManifest/Reference"
ATTACHMENT_PATH = "/AttachmentEncoded/Attachment"
STATUS_PATH = HEADER_PATH  # our writer and the VPCP SDK; Bkav writes `Status` there


def element_name(cls: type, field: str) -> str:
    """The edXML element (path step) a model field stands for."""
    name = _ELEMENT_NAMES.get((cls, field))
    if name is not None:
        return name
    return "".join(part[:1].upper() + part[1:] for part in field.rstrip("_").split("_"))


def short_path(path: str) -> str:
    """The last two steps of a path, to name a field in a message: `To[2]/OrganId`."""
    return "/".join(path.rsplit("/", 2)[-2:]).lstrip("/")


def root_path(doc: Any) -> str:
    """Where the paths of `doc`'s fields start: a status packet's at its MessageHeader."""
    return STATUS_PATH if isinstance(doc, StatusPacket) else ""


def iter_text(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every str in an attrs object tree as (path, text), recursing into nested objects and
    tuples; items of a tuple are numbered from 1 as in XPath (`…/MessageHeader/To[2]/OrganName`).
    """
    if not attrs.has(type(obj)):
        return
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        step = f"{path}/{element_name(type(obj), field.name)}"
        if isinstance(value, str):
            yield step, value
        elif isinstance(value, tuple):
            for index, item in enumerate(value, 1):
                if isinstance(item, str):
                    yield f"{step}[{index}]", item
                else:
                    yield from iter_text(item, f"{step}[{index}]")
        else:
            yield from iter_text(value, step)


# --- Vietnamese syllables ---------------------------------------------------------------------

_GRAVE, _ACUTE, _HOOK, _TILDE, _DOT = "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"
TONES = ("", _GRAVE, _ACUTE, _HOOK, _TILDE, _DOT)  # ngang, huyền, sắc, hỏi, ngã, nặng
_CIRCUMFLEX, _BREVE = "\u0302", "\u0306"
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzăâêôơưđ")


def _words(text: str) -> list[str]:
    return text.split()


_INITIALS = (
    "ngh",
    *_words("ch gh gi kh ng nh ph qu th tr"),
    *_words("b c d đ g h k l m n p r s t v x"),
    "",
)  # longest first, so that "nghe" is ngh + e
_STOPS = frozenset({"c", "ch", "p", "t"})

_OPEN_RHYMES = _words(
    "a ai ao au ay âu ây e eo ê êu i ia iu iêu o oi ô ôi ơ ơi u ua ui uôi ư ưa ưi ưu ươi ươu "
    "y yêu oa oai oay oao oe oeo uê uy uya uyu uơ uây"
)
_CLOSED_RHYMES = {
    "a": "c ch m n ng nh p t",
    "ă": "c m n ng p t",
    "â": "c m n ng p t",
    "e": "c m n ng p t",
    "ê": "ch m n nh p t",
    "i": "ch m n nh p t",
    "o": "c m n ng p t",
    "oo": "c ng",
    "ô": "c m n ng p t",
    "ơ": "m n p t",
    "u": "c m n ng p t",
    "ư": "c m n ng t",
    "iê": "c m n ng p t",
    "yê": "m n t",
    "uô": "c m n ng t",
    "ươ": "c m n ng p t",
    "oa": "c ch m n ng nh p t",
    "oă": "c m n ng t",
    "oe": "n t",
    "uâ": "n ng t",
    "uê": "ch nh",
    "uy": "ch nh t",
    "uyê": "n t",
}


def _tone_positions(nucleus: str, final: str) -> frozenset[int]:
    """Where the tone mark may sit in a rhyme: on the main vowel, either way for oa/oe/uy."""
    if final or len(nucleus) == 1:
        return frozenset({len(nucleus) - 1})
    if len(nucleus) == 3:
        return frozenset({1})
    if nucleus in ("oa", "oe", "uy"):  # hòa / hoà, thúy / thuý: both styles are in use
        return frozenset({0, 1})
    if nucleus in ("uê", "uơ"):
        return frozenset({1})
    return frozenset({0})


# rhyme → (final consonant, where its tone may sit)
_RHYMES: dict[str, tuple[str, frozenset[int]]] = {
    r: ("", _tone_positions(r, "")) for r in _OPEN_RHYMES
}
for _nucleus, _finals in _CLOSED_RHYMES.items():
    for _final in _words(_finals):
        _RHYMES[_nucleus + _final] = (_final, _tone_positions(_nucleus, _final))


def _split_tone(word: str) -> tuple[str, str, int] | None:
    """(toneless letters, tone mark, index of the toned letter) or None if not toneable."""
    letters: list[str] = []
    tone, where = "", -1
    for index, char in enumerate(word):
        parts = unicodedata.normalize("NFD", char)
        marks = [m for m in parts if m in TONES[1:]]
        if marks:
            if tone or len(marks) > 1:
                return None
            tone, where = marks[0], index
        letters.append(unicodedata.normalize("NFC", "".join(m for m in parts if m not in marks)))
    return "".join(letters), tone, where


def is_syllable(word: str, *, loan_rhymes: bool = True) -> bool:
    """Whether `word` (any case) is one well-formed Vietnamese syllable.

    `loan_rhymes=False` refuses the rhymes found only in loanwords (xoong, soóc), which a
    legacy-table reading should not be credited with.
    """
    split = _split_tone(word.lower())
    if split is None:
        return False
    toneless, tone, where = split
    if not toneless or any(c not in _LETTERS for c in toneless):
        return False
    for initial in _INITIALS:
        if not toneless.startswith(initial):
            continue
        rhyme = _RHYMES.get(toneless[len(initial) :])
        if rhyme is None or (not loan_rhymes and toneless[len(initial) :].startswith("oo")):
            continue
        final, positions = rhyme
        if tone and where - len(initial) not in positions:
            continue
        if final in _STOPS and tone not in (_ACUTE, _DOT):
            continue  # a syllable closed by c/ch/p/t only takes sắc or nặng
        return True
    return False


def _sane_case(word: str) -> bool:
    return word in (word.lower(), word.upper()) or (
        word[:1].isupper() and word[1:] == word[1:].lower()
    )


# --- legacy encodings -------------------------------------------------------------------------


class LegacyEncoding(enum.Enum):
    TCVN3 = "TCVN3"  # TCVN 5712:1993 VN3, the "ABC" .VnTime fonts
    VNI = "VNI"  # VNI-Windows, the VNI-Times fonts


def _compose(base: str, *marks: str) -> str:
    return unicodedata.normalize("NFC", base + "".join(marks))


_TCVN3_BASES = {  # Unicode base letter → TCVN3 bytes (read as cp1252) per tone in TONES order
    "a": "aµ¸¶·¹",
    "ă": "¨»¾¼½Æ",
    "â": "©ÇÊÈÉË",
    "e": "eÌÐÎÏÑ",
    "ê": "ªÒÕÓÔÖ",
    "i": "i×ÝØÜÞ",
    "o": "oßãáâä",
    "ô": "«åèæçé",
    "ơ": "¬êíëìî",
    "u": "uïóñòô",
    "ư": "\xadõøö÷ù",
    "y": "yúýûüþ",
}
_TCVN3_CAPITALS = {"Ă": "¡", "Â": "¢", "Ê": "£", "Ô": "¤", "Ơ": "¥", "Ư": "¦", "Đ": "§"}

TCVN3_DECODE: dict[str, str] = {"®": "đ"}
TCVN3_DECODE.update({v: k for k, v in _TCVN3_CAPITALS.items()})
for _base, _row in _TCVN3_BASES.items():
    for _tone, _char in zip(TONES, _row, strict=True):
        if not _char.isascii():
            TCVN3_DECODE[_char] = _compose(_base, _tone)

# The 134-letter table: 67 lower-case letters and their capitals; a toned capital had no code of
# its own in VN3 (the ".VnTimeH" fonts drew the lower-case code as a capital).
TCVN3_ENCODE: dict[str, str] = {}
for _char, _unicode in TCVN3_DECODE.items():
    TCVN3_ENCODE.setdefault(_unicode, _char)
    if _unicode.upper() not in TCVN3_ENCODE:
        TCVN3_ENCODE[_unicode.upper()] = _char

# TCVN3 codes that are not letters in any Latin-script language: a word holding one is TCVN3.
_TCVN3_MARKERS = frozenset(c for c in TCVN3_DECODE if not c.isalpha()) | {"ª", "µ"}

# VNI: a base letter followed by one modifier byte that carries the shape mark and the tone.
_VNI_TONE = dict(zip(TONES[1:], "øùûõï", strict=True))
_VNI_CIRCUMFLEX = dict(zip(TONES, "âàáåãä", strict=True))
_VNI_BREVE = dict(zip(TONES, "êèéúüë", strict=True))
_VNI_SINGLE = {"ơ": "ô", "ư": "ö", "đ": "ñ", "ỵ": "î"}
_VNI_SINGLE.update({_compose("i", t): c for t, c in zip(TONES[1:], "ìíæóò", strict=True)})

VNI_PAIRS: dict[tuple[str, str], str] = {}  # (VNI base, modifier) → Unicode letter, lower case
for _base in "aeouy":
    for _tone, _mod in _VNI_TONE.items():
        VNI_PAIRS[_base, _mod] = _compose(_base, _tone)
for _base, _vni in (("ơ", "ô"), ("ư", "ö")):
    for _tone, _mod in _VNI_TONE.items():
        VNI_PAIRS[_vni, _mod] = _compose(_base, _tone)
for _base in "aeo":
    for _tone, _mod in _VNI_CIRCUMFLEX.items():
        VNI_PAIRS[_base, _mod] = _compose(_base, _CIRCUMFLEX, _tone)
for _tone, _mod in _VNI_BREVE.items():
    VNI_PAIRS["a", _mod] = _compose("a", _BREVE, _tone)
VNI_SINGLES: dict[str, str] = {v: k for k, v in _VNI_SINGLE.items()}
VNI_ENCODE: dict[str, str] = {unicode: base + mod for (base, mod), unicode in VNI_PAIRS.items()}
VNI_ENCODE.update(_VNI_SINGLE)  # ỵ is "î", not "yï": the VNI fonts have a code of their own
_VNI_CHARS = frozenset(m for _, m in VNI_PAIRS) | frozenset(VNI_SINGLES)
_VNI_CHARS |= frozenset(c.upper() for c in _VNI_CHARS)


def _with_case(letter: str, like: str) -> str:
    return letter.upper() if like.isupper() else letter


def _decode_vni(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        pair = VNI_PAIRS.get((char.lower(), text[index + 1 : index + 2].lower()))
        if pair is not None:
            out.append(_with_case(pair, char))
            index += 2
            continue
        single = VNI_SINGLES.get(char.lower())
        out.append(char if single is None else _with_case(single, char))
        index += 1
    return "".join(out)


def _ascii_letters(text: str) -> list[str]:
    return [c for c in text if c.isascii() and c.isalpha()]


def _decode_tcvn3_word(word: str, *, capitals: bool) -> str:
    decoded = "".join(TCVN3_DECODE.get(c, c) for c in word)
    letters = _ascii_letters(word)
    # Capitals typed in a normal VN3 font keep their lower-case toned letters: "VIÖT" is VIỆT.
    if letters and all(c.isupper() for c in letters) and (capitals or len(letters) >= 2):
        return decoded.upper()
    return decoded


def convert_legacy(text: str, encoding: LegacyEncoding) -> str:
    """Read mojibake `text` as the legacy encoding it was typed in; the result is NFC Unicode."""
    if encoding is LegacyEncoding.VNI:
        return unicodedata.normalize("NFC", _decode_vni(text))
    letters = _ascii_letters(text)
    capitals = len(letters) >= 4 and all(c.isupper() for c in letters)
    out: list[str] = []
    last = 0
    for start, end in _tokens(text):
        out.append(text[last:start])
        out.append(_decode_tcvn3_word(text[start:end], capitals=capitals))
        last = end
    out.append(text[last:])
    return unicodedata.normalize("NFC", "".join(out))


def encode_legacy(text: str, encoding: LegacyEncoding) -> str:
    """Unicode Vietnamese as a legacy font would have stored it (read back as cp1252)."""
    nfc = unicodedata.normalize("NFC", text)
    table = TCVN3_ENCODE if encoding is LegacyEncoding.TCVN3 else VNI_ENCODE
    out: list[str] = []
    for char in nfc:
        code = table.get(char)
        if code is None and encoding is LegacyEncoding.VNI and char.lower() in table:
            code = table[char.lower()].upper()
        out.append(char if code is None else code)
    return "".join(out)


# A word: letters and digits (as str.isalnum() has them) plus the TCVN3 codes that are not letters.
_WORD = re.compile("(?:[^\\W_]|[" + re.escape("".join(sorted(TCVN3_DECODE))) + "])+")


def _tokens(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _WORD.finditer(text)]


@functools.lru_cache(maxsize=1 << 16)
def _evidence(word: str, encoding: LegacyEncoding) -> int:
    """0 when `word` says nothing of `encoding`, 1 when it reads as it, 2 when only it explains it.

    A word is evidence when it is not a Vietnamese syllable as written but is one through the
    legacy table. English, numbers, codes and correct Unicode never qualify; a stray French or
    German word rarely does, hence two pieces of evidence are needed before a text is flagged.
    """
    if any(c.isdecimal() for c in word) or not any(c.isascii() and c.isalpha() for c in word):
        return 0
    legacy = [c for c in word if not c.isascii()]
    if encoding is LegacyEncoding.TCVN3:
        if not legacy or any(c not in TCVN3_DECODE for c in legacy):
            return 0
        converted = "".join(TCVN3_DECODE.get(c, c) for c in word)
    else:
        if not legacy or any(c not in _VNI_CHARS for c in legacy):
            return 0
        converted = _decode_vni(word)
    if converted == word or len(converted) < 2 or not is_syllable(converted, loan_rhymes=False):
        return 0
    if _sane_case(word) and is_syllable(word):
        return 0
    if encoding is LegacyEncoding.TCVN3 and (
        not _sane_case(word) or any(c in _TCVN3_MARKERS for c in legacy)
    ):
        return 2
    return 1


_THRESHOLD = 2
# Share of the distinct Latin-1 words that must read as the encoding. Legacy text measured 0.6
# and more per line (most of its words carry a diacritic); French or German text with a stray
# "Loïc" stays far below, however often the name recurs (each word counts once).
_RATIO = 0.3


@attrs.frozen
class LegacyEvidence:
    """What the distinct words of a text say of each legacy encoding."""

    scores: dict[LegacyEncoding, int]  # sum of word evidence (1, or 2 for unmistakable words)
    words: dict[LegacyEncoding, int]  # words that read as the encoding
    latin1_words: int  # words a legacy table could have produced at all

    def verdict(self) -> LegacyEncoding | None:
        # On a tie VNI wins: TCVN3's unmistakable words count double, so a tie means weak TCVN3
        # evidence made of the very letters VNI uses as modifiers.
        best = max((LegacyEncoding.VNI, LegacyEncoding.TCVN3), key=lambda e: self.scores[e])
        if self.scores[best] >= _THRESHOLD and self.words[best] >= _RATIO * self.latin1_words:
            return best
        return None


def _latin1_words(text: str) -> set[str]:
    """The distinct words a legacy table could have produced: non-ASCII, all within Latin-1."""
    return {
        word
        for word in (match.group() for match in _WORD.finditer(text))
        if not word.isascii() and max(word) <= "\xff"
    }


def _weigh(words: set[str]) -> LegacyEvidence:
    scores = dict.fromkeys(LegacyEncoding, 0)
    counts = dict.fromkeys(LegacyEncoding, 0)
    for word in words:
        for encoding in LegacyEncoding:
            evidence = _evidence(word, encoding)
            scores[encoding] += evidence
            counts[encoding] += evidence > 0
    return LegacyEvidence(scores, counts, len(words))


def legacy_evidence(text: str) -> LegacyEvidence:
    return _weigh(_latin1_words(text))


def detect_legacy(text: str) -> LegacyEncoding | None:
    """The legacy encoding `text` was most likely typed in, or None for ordinary Unicode.

    A text that is not legacy as a whole is judged line by line too, so that one pasted legacy
    paragraph in a long Unicode text is still found.
    """
    if text.isascii():
        return None
    lines = [_latin1_words(line) for line in unicodedata.normalize("NFC", text).splitlines()]
    verdict = _weigh(set().union(*lines)).verdict()
    if verdict is None and len(lines) > 1:
        for words in lines:
            verdict = _weigh(words).verdict()
            if verdict is not None:
                break
    return verdict


# --- findings ---------------------------------------------------------------------------------

LEGACY_ENCODING_TEXT = FindingCode(
    "LegacyEncodingText",
    Severity.ERROR,
    "Text at {field} looks typed in the legacy {encoding} encoding, not Unicode (TCVN 6909:2001); "
    "it probably reads “{reading}”",
    "Văn bản tại {field} có vẻ được gõ bằng bảng mã cũ {encoding}, không phải Unicode "
    "(TCVN 6909:2001); có thể đọc là “{reading}”",
    Fault.RULE_VIOLATION,
)
TEXT_CONTROL_CHARACTER = FindingCode(
    "TextControlCharacter",
    Severity.ERROR,
    "Text at {field} contains the control character {char} ({count} in all)",
    "Văn bản tại {field} chứa ký tự điều khiển {char} (tổng cộng {count})",
    Fault.RULE_VIOLATION,
)
TEXT_REPLACEMENT_CHARACTER = FindingCode(
    "TextReplacementCharacter",
    Severity.ERROR,
    "Text at {field} contains U+FFFD ({count} in all): it was damaged by a wrong decoding upstream",
    "Văn bản tại {field} chứa ký tự U+FFFD (tổng cộng {count}): đã bị hỏng do giải mã sai "
    "ở phía trước",
    Fault.RULE_VIOLATION,
)

_READING_MAX = 200
_ALLOWED_CONTROLS = frozenset("\t\n\r")  # \r survives XML only as &#13;, harmless either way


def _is_control(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 or 0x7F <= code <= 0x9F) and char not in _ALLOWED_CONTROLS


def _shorten(text: str) -> str:
    return text if len(text) <= _READING_MAX else text[: _READING_MAX - 1] + "…"


def check_text(path: str, text: str) -> tuple[Finding, ...]:
    """The Unicode findings for one text field."""
    findings: list[Finding] = []
    field = short_path(path)
    controls = [c for c in text if _is_control(c)]
    if controls:
        findings.append(
            TEXT_CONTROL_CHARACTER(
                path=path,
                field=short_path(path),
                char=f"U+{ord(controls[0]):04X}",
                count=len(controls),
            )
        )
    replacements = text.count("\ufffd")
    if replacements:
        findings.append(TEXT_REPLACEMENT_CHARACTER(path=path, field=field, count=replacements))
    encoding = detect_legacy(text)
    if encoding is not None:
        findings.append(
            LEGACY_ENCODING_TEXT(
                path=path,
                field=field,
                encoding=encoding.value,
                reading=_shorten(convert_legacy(text, encoding)),
                value=_shorten(text),
            )
        )
    return tuple(findings)


def scan(doc: Any) -> tuple[Finding, ...]:
    """Unicode findings for every text field of an envelope, status packet or any model part."""
    findings: list[Finding] = []
    for path, text in iter_text(doc, root_path(doc)):
        findings.extend(check_text(path, text))
    return tuple(findings)
