"""Amounts of a substance taken or given ("3 g per day", "1–5 g", "10 mg/kg i.p.").

Why regexes and not the automaton: an amount is a number pattern followed by a unit, and
what decides it is the few characters around it (a "/mL" after the unit makes it a
concentration, an "IC50 =" before it a potency). One precompiled pattern finds every
number + unit in a single pass; only its few hits are looked at in Python.

Rules (issue 13): ``low``/``high`` are equal for a single amount, a range "1–5 g" gives 1 and
5, a list "5, 10 and 20 mg/kg" gives one dose per number. Units are normalised to ``g``,
``mg``, ``ug``, ``mg/kg``, ``mL`` and counted units in the singular (``bottle``, ``glass``,
``tablet``, ``capsule``, ``cup``, ``pill``). ``per`` is ``day`` for daily amounts, the stated
period otherwise ("per week", "per infusion"), and None for a single dose or a per-dose amount
("2 g three times a day"). Concentrations (ng/mL, mg/L, µM, nM, mg/g), percentages and
Ki/IC50/ED50/LD50 values are not doses; numbers inside names ("7-hydroxymitragynine") are not
numbers at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kratomlit.sample_size import number_starts

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNITS: dict[str, str] = {
    "g": "g", "gm": "g", "gms": "g", "gram": "g", "grams": "g", "mg": "mg", "milligram": "mg",
    "milligrams": "mg", "µg": "ug", "μg": "ug", "ug": "ug", "mcg": "ug", "microgram": "ug",
    "micrograms": "ug", "ml": "mL", "mls": "mL", "milliliter": "mL", "milliliters": "mL",
    "millilitre": "mL", "millilitres": "mL", "kg": "kg",
}
_COUNTED: dict[str, str] = {
    "bottle": "bottle", "bottles": "bottle", "glass": "glass", "glasses": "glass",
    "tablet": "tablet", "tablets": "tablet", "capsule": "capsule", "capsules": "capsule",
    "cup": "cup", "cups": "cup", "pill": "pill", "pills": "pill", "packet": "packet",
    "packets": "packet", "teaspoon": "teaspoon", "teaspoons": "teaspoon",
    "tablespoon": "tablespoon", "tablespoons": "tablespoon",
}
_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "a": 1, "an": 1, "half": 0.5}
_unit_alt = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_count_alt = "|".join(sorted(_COUNTED, key=len, reverse=True))
_word_alt = "|".join(k for k in _WORD_NUMBERS if len(k) > 2)
_SEP = r"\s*(?:-|–|—|to|and|or)\s*"

# A measured amount: number (or range, or list) + unit, the unit possibly repeated in a range.
_AMOUNT = re.compile(
    rf"(?<![\w.,\-/])(?P<nums>{_NUM}(?:\s*(?:{_unit_alt})?(?:{_SEP}|,\s*|,?\s+(?:and|or)\s+)"
    rf"{_NUM})*)[\s-]?(?P<unit>{_unit_alt})(?P<kg>\s?/\s?kg\b)?"
    rf"(?P<per>\s?/\s?(?:day|d|week|wk|dose|infusion|month|h|hr)\b)?"
    rf"(?P<conc>\s?/\s?(?:l|ml|dl|g|mg|m2|kg)\b)?(?![\w%])",
    re.IGNORECASE,
)
# A counted amount: "2 bottles", "three glasses", "1-2 capsules".
_COUNT = re.compile(
    rf"(?<![\w.,\-/])(?P<nums>(?:{_NUM}|{_word_alt})(?:{_SEP}(?:{_NUM}|{_word_alt}))?)\s+"
    rf"(?:[a-z]+\s+)?(?P<unit>{_count_alt})\b",
    re.IGNORECASE,
)
_NUMBER_IN = re.compile(_NUM)
_BETWEEN = re.compile(r"\bbetween\s+$", re.IGNORECASE)
_PER_AFTER = re.compile(
    r"\s*(?:(?P<times>(?:once|twice|thrice|\w+\s+times?)\s+(?:a|per|each)\s+day|"
    r"(?:once|twice|thrice|\w+\s+times?)\s+daily|(?:q|b|t)\.?i\.?d\.?\b)|"
    r"(?P<day>(?:per|a|each|every|/)\s*day\b|daily\b|/d\b|a\s+day\b)|"
    r"(?:per|a|each|every|/)\s*(?P<other>week|month|infusion|dose|session|hour)s?\b|"
    r"(?P<weekly>weekly|monthly)\b)",
    re.IGNORECASE,
)
# a daily amount stated after the substance: "3 bottles of kratom juice daily"
_PER_LATE = re.compile(
    r"\s*of\s+(?:[\w()-]+\s+){0,3}?(?:(?P<times>(?:once|twice|thrice|\w+\s+times?)\s+"
    r"(?:a|per|each)\s+day|(?:once|twice|thrice|\w+\s+times?)\s+daily)|"
    r"(?P<day>(?:per|a|each|every)\s+day\b|daily\b)|(?:per|a|each|every)\s+"
    r"(?P<other>week|month|infusion)\b|(?P<weekly>weekly|monthly)\b)",
    re.IGNORECASE,
)
_POTENCY = re.compile(
    r"(?:\b(?:ki|kd|ic50|ec50|ed50|ld50|td50|cmax|auc|lod|loq|ic₅₀|ed₅₀|emax|"
    r"concentrations?|levels?|limit of (?:detection|quantification)|contained|content|"
    r"containing|yield(?:ed)?)\b)[^.;()]{0,25}$",
    re.IGNORECASE,
)
_FLUID = re.compile(r"\s*(?:of\s+)?(?:whole\s+)?(?:blood|urine|plasma|serum|samples?|"
                    r"methanol|water|solvent|ethanol|acetonitrile|buffer)\b", re.IGNORECASE)
_SUBSTANCE = re.compile(
    r"\b(?:(?:dried |powdered |crushed )?kratom(?: (?:leaf|leaves|powder|tea|extract|"
    r"products?|juice))?|(?:7|7-|7 )?-?hydroxy-?mitragynine|mitragynine(?: pseudoindoxyl)?|"
    r"speciogynine|speciociliatine|paynantheine|corynantheidine|mitraphylline|"
    r"(?:\w+ )?extracts?|leaf powder|leaves|buprenorphine(?:/naloxone)?|methadone|naloxone|"
    r"naltrexone|morphine|heroin|fentanyl|oxycodone|hydrocodone|tramadol|codeine|lofexidine|"
    r"clonidine|gabapentin|pregabalin|phenobarbital|diazepam|lorazepam|loperamide|"
    r"quetiapine|olanzapine|caffeine|ethanol|alcohol|acetaminophen|paracetamol|"
    r"ketamine|cocaine|amphetamine|methamphetamine|midazolam|nalbuphine|doxepin|tea)\b",
    re.IGNORECASE,
)
_SUBSTANCE_AFTER = re.compile(r"\s*(?:of\s+)?(?:the\s+)?(?:\w+\s+)?", re.IGNORECASE)


# Unit words as the extractor's automaton sees them (lower case, punctuation as spaces).
UNIT_WORDS = tuple(sorted({u.lower().replace("µ", "u").replace("μ", "u") for u in _UNITS}))
COUNTED_WORDS = tuple(sorted(_COUNTED))


@dataclass(frozen=True)
class Dose:
    """One amount as written, normalised: numbers, unit, period, substance, and its sentence."""

    text: str
    low: float
    high: float
    unit: str
    per: str | None
    substance: str | None
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "low": self.low, "high": self.high, "unit": self.unit,
                "per": self.per, "substance": self.substance, "sentence": self.sentence}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dose:
        return cls(text=str(data["text"]), low=float(data["low"]), high=float(data["high"]),
                   unit=str(data["unit"]), per=data.get("per"), substance=data.get("substance"),
                   sentence=str(data.get("sentence", "")))


def _value(token: str) -> float:
    word = _WORD_NUMBERS.get(token.lower())
    return float(word) if word is not None else float(token.replace(",", ""))


def _numbers(nums: str) -> list[tuple[float, float]]:
    """(low, high) pairs: one range "1-5" or a list "5, 10 and 20"."""
    parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", nums)
    if len(parts) == 1:
        bounds = re.split(r"\s*(?:-|–|—|\bto\b)\s*", nums.strip())
        values = [_value(re.sub(r"[^\d.,\w]|[a-zµμ]+$", "", b, flags=re.I) or b)
                  for b in bounds if b.strip()]
        return [(min(values), max(values))] if values else []
    out = []
    for part in parts:
        out.extend(_numbers(part) if re.search(r"\d\s*(?:-|–|—|to)\s*\d", part) else
                   [(v, v) for v in map(float, [p.replace(",", "") for p in
                                                _NUMBER_IN.findall(part)])])
    return out


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start))
    right_candidates = [i for i in (text.find(". ", end), text.find("\n", end)) if i >= 0]
    right = min(right_candidates) if right_candidates else len(text)
    return text[left + 1 if left >= 0 else 0 : right + 1].strip()


def _per(text: str, end: int, slash: str | None) -> tuple[str | None, int]:
    """The period after an amount, and where the amount's text ends."""
    if slash:
        word = slash.strip(" /").lower()
        if word in ("day", "d"):
            return "day", end
        return {"wk": "week", "h": "hour", "hr": "hour"}.get(word, word), end
    m = _PER_AFTER.match(text, end) or _PER_LATE.match(text, end)
    if not m:
        return None, end
    if m.group("times"):
        return None, end
    if m.group("day"):
        return "day", m.end()
    if m.group("weekly"):
        return m.group("weekly").lower()[:-2], m.end()
    return m.group("other").lower(), m.end()


def _substance(text: str, start: int, end: int, sentence_start: int) -> str | None:
    """The substance named just after the amount ("4 g of kratom"), else the nearest before."""
    after = _SUBSTANCE_AFTER.match(text, end)
    window_end = after.end() if after else end
    m = _SUBSTANCE.search(text, end, min(len(text), window_end + 30))
    if m and m.start() <= window_end + 1:
        return m.group(0)
    best = None
    for m in _SUBSTANCE.finditer(text, max(sentence_start, start - 120), start):
        best = m.group(0)
    return best


def _excluded(text: str, start: int, end: int, unit: str) -> bool:
    before = text[max(0, start - 40) : start]
    if _POTENCY.search(before):
        return True
    return unit == "mL" and bool(_FLUID.match(text, end))


def find_doses(text: str, units: Sequence[int] | None = None,
               counted: Sequence[int] | None = None) -> list[Dose]:
    """Every dose in ``text`` (title and abstract joined), in text order.

    ``units`` / ``counted``: where unit words stand (from the extractor's automaton pass);
    the regexes then only look at a short window around each, instead of the whole text.
    """
    found: list[tuple[int, Dose]] = []
    seen: set[int] = set()
    for m in _windows(_AMOUNT, text, units, 45, 30):
        if m.start() not in seen:
            seen.add(m.start())
            found.extend(_measured(text, m))
    for m in _windows(_COUNT, text, counted, 40, 20):
        if m.start() not in seen:
            seen.add(m.start())
            found.extend(_counted(text, m))
    found.sort(key=lambda pair: pair[0])
    return [dose for _, dose in found]


def _windows(pattern: re.Pattern[str], text: str, anchors: Sequence[int] | None, before: int,
             after: int) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` whose unit stands at an anchor (all matches without anchors).

    With anchors, the pattern is only tried at the numbers among the few words before each
    unit, earliest first, so "5, 10 and 20 mg/kg" is found whole.
    """
    if anchors is None:
        yield from pattern.finditer(text)
        return
    for p in anchors:
        for start in reversed(number_starts(text, max(0, p - before), p, 8)):
            m = pattern.match(text, start)
            if m and m.start("unit") - 1 <= p <= m.end("unit"):
                yield m
                break


def _measured(text: str, m: re.Match[str]) -> list[tuple[int, Dose]]:
    unit = _UNITS[m.group("unit").lower()]
    if unit == "kg" or m.group("conc"):
        return []  # a body weight, a concentration or a composition, not a dose
    if m.group("kg"):
        unit += "/kg"
    per, end = _per(text, m.end(), m.group("per"))
    if _excluded(text, m.start(), m.end(), unit):
        return []
    return _make(text, m.start(), m.end(), end, m.group("nums"), unit, per)


def _counted(text: str, m: re.Match[str]) -> list[tuple[int, Dose]]:
    nums = m.group("nums")
    if nums.lower() in ("a", "an"):
        return []
    unit = _COUNTED[m.group("unit").lower()]
    per, end = _per(text, m.end(), None)
    return _make(text, m.start(), m.end(), end, nums, unit, per)


def _make(text: str, start: int, unit_end: int, end: int, nums: str, unit: str,
          per: str | None) -> list[tuple[int, Dose]]:
    sentence = _sentence(text, start, end)
    sentence_start = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start)) + 1
    substance = _substance(text, start, unit_end, sentence_start)
    shown = text[start:end].strip()
    if _BETWEEN.search(text, max(0, start - 9), start):
        nums = re.sub(r"\s+and\s+", "-", nums)  # "between 1 and 5 g" is a range
    try:
        pairs = _numbers(nums)
    except ValueError:
        return []
    return [(start, Dose(shown, low, high, unit, per, substance, sentence))
            for low, high in pairs]


def kratom_g_per_day(doses: list[Dose]) -> tuple[float, float] | None:
    """[low, high] grams of kratom (leaf, powder, tea) per day over all daily kratom doses."""
    lows, highs = [], []
    for dose in doses:
        if dose.per != "day" or dose.unit not in ("g", "mg"):
            continue
        name = (dose.substance or "").lower()
        if "kratom" not in name and name not in ("leaves", "leaf powder", "tea", ""):
            continue
        if not name and "kratom" not in dose.sentence.lower():
            continue
        scale = 1.0 if dose.unit == "g" else 0.001
        lows.append(dose.low * scale)
        highs.append(dose.high * scale)
    return (min(lows), max(highs)) if lows else None
