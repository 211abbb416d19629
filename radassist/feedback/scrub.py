"""Remove patient identifiers from free text (report sentences, signed reports).

Two passes, because neither alone is enough:
1. Known values: the patient's name parts, ids and birth date taken from the image header, removed
   wherever they appear as whole words (case-insensitive).
2. Patterns: dates, titled names ("Mr Smith", "Dr. Jones"), "Name: ..." fields, capitalised names
   after a word that introduces a person ("patient John Smith", "discussed with Jane", "nodule per
   John Q. Smith", "son Peter"), long digit runs (record numbers, phone numbers) and e-mail addresses.

Every person name of the source header (any PN attribute, not only the patient's) is a known value.
Known limit, stated in the export's datasheet: a name that is not in the header and is neither titled,
labelled nor introduced by such a word (e.g. "John was on the ward") is NOT found. The report NLP and
the model only need findings, so over-redaction is preferred to under-redaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NAME = "[NAME]"
DATE = "[DATE]"
NUMBER = "[NUMBER]"

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_TITLES = r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Mme|Mlle|Sr|Sra"
_EMAIL = re.compile(r"[\w.'+-]+@[\w-]+(?:\.[\w-]+)+")  # first: a name inside an address would split it
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), DATE),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"), DATE),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\.?\s+{_MONTHS}\.?,?\s+\d{{2,4}}\b", re.IGNORECASE), DATE),
    (re.compile(rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", re.IGNORECASE), DATE),
    (re.compile(rf"\b(?:{_TITLES})\.?\s+[A-Z][\w'\-]+(?:\s+[A-Z][\w'\-]+)?"), NAME),
    (re.compile(r"\b(?:patient|name|pt|surname|forename)\s*(?:name)?\s*[:=]\s*[^\n,;.]+", re.IGNORECASE), NAME),
    (re.compile(r"\b(?:MRN|NHS|ID|accession|record)\b\s*(?:no\.?|number|#)?\s*[:#]?\s*[A-Z0-9][A-Z0-9\-/]{3,}\b",
                re.IGNORECASE), NUMBER),
    (re.compile(r"\+?\d[\d ()\-]{7,}\d"), NUMBER),
    (re.compile(r"\b\d{6,}\b"), NUMBER),
)
_NAME_SPLIT = re.compile(r"[\^=,\s]+")
# Words after which a capitalised word (or two to four, initials allowed) is taken to be a person's name.
_PERSON_CUES = (r"patient|pt|per|d/w|(?:discussed|spoke|speaking|talked|reviewed|agreed)\s+with|"
                r"(?:spoke|talked|communicated|relayed|reported|explained|given|handed\s+over|referred|called|phoned|sent)\s+to|"
                r"(?:seen|reviewed|referred|requested|ordered|reported|dictated|read)\s+by|"
                r"informed|called|told|contacted|paged|notified|"
                r"son|daughter|wife|husband|mother|father|brother|sister|partner|relative|guardian|"
                r"nurse|physician|clinician|radiologist|consultant|registrar|resident|colleague|attending")
_CAPITALISED = rf"(?!(?:{_TITLES})\b)[A-Z][a-z][\w'\-]*"  # a title is not a name (titled names: above)
_UNTITLED_NAME = re.compile(
    rf"(?<![\w])((?i:{_PERSON_CUES})\.?:?\s+)({_CAPITALISED}(?:\s+(?:{_CAPITALISED}|[A-Z]\.?(?!\w))){{0,3}})")


def name_tokens(*person_names: str | None) -> set[str]:
    """Whole-word tokens of DICOM person names ("DOE^JANE^Q" -> {"DOE", "JANE", "DOE JANE", ...})."""
    tokens: set[str] = set()
    for value in person_names:
        if not value:
            continue
        parts = [p for p in _NAME_SPLIT.split(str(value)) if len(p.strip(".")) >= 2]
        tokens.update(p.strip(".") for p in parts)
        if len(parts) > 1:
            tokens.add(" ".join(parts))
            tokens.add(" ".join(reversed(parts)))
    return tokens


def scrub_text(text: str, *, names: Iterable[str] = (), identifiers: Iterable[str] = ()) -> str:
    """The text with known names/identifiers and identifier-like patterns replaced by placeholders."""
    text = _EMAIL.sub(NUMBER, text)
    known = sorted({t for t in names if t}, key=len, reverse=True)
    if known:
        text = re.sub(r"(?<!\w)(?:" + "|".join(map(re.escape, known)) + r")(?!\w)", NAME, text, flags=re.IGNORECASE)
    for value in sorted({i.strip() for i in identifiers if i and len(i.strip()) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), NUMBER, text, flags=re.IGNORECASE)
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return _UNTITLED_NAME.sub(lambda match: match.group(1) + NAME, text)


_SLUG_SEPARATORS = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """'Nodule per [NAME]' -> 'nodule_per_name': the label form the viewer makes of a typed finding name."""
    return _SLUG_SEPARATORS.sub("_", text.lower()).strip("_")


def scrub_typed_label(label: str, display_name: str | None = None, *, names: Iterable[str] = (),
                      identifiers: Iterable[str] = ()) -> tuple[str, str]:
    """(label, display name) the radiologist typed (an added finding, a region label), identifiers removed.

    The display name is scrubbed as text: as typed, its capitals let untitled names be found. The label
    is often a slug of it ('nodule_per_john_smith'), scrubbed as words; when either lost something, a slug
    label is rebuilt from the scrubbed text, so the label never keeps what the display name lost.
    """
    shown = display_name if display_name is not None else label
    clean_shown = scrub_text(shown, names=names, identifiers=identifiers)
    words = label.replace("_", " ")
    clean_words = scrub_text(words, names=names, identifiers=identifiers)
    if clean_shown == shown and clean_words == words:
        return label, shown
    source = clean_shown if clean_shown != shown else clean_words
    return (slug(source) if label == slug(label) else source), clean_shown
