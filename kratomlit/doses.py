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
("2 g three times a day"; "once daily", "every morning" are daily). Per-kg spellings
("mg kg-1", "mg·kg−1", "mg per kg") give mg/kg, litres mL, "4.2 ± 3.1 g" and "7.3 (4.1) g"
the mean.
Concentrations (ng/mL, mg/L, µM, nM, mg/g), percentages, Ki/IC50/ED50/LD50 values, animal
weights, denominators ("per 100 g", "mg GAE/g"), vehicles, laboratory material ("were
extracted", "was dissolved"), a unit's strength ("2 mg each") and flows ("/min") are not
doses; numbers inside names ("7-hydroxymitragynine") are not numbers at all. Held-out check:
docs/extract.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from kratomlit.models import Dose, built
from kratomlit.sample_size import lowered_text, number_starts

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNITS: dict[str, str] = {
    "g": "g", "gm": "g", "gms": "g", "gram": "g", "grams": "g", "mg": "mg", "milligram": "mg",
    "milligrams": "mg", "µg": "ug", "μg": "ug", "ug": "ug", "mcg": "ug", "microgram": "ug",
    "micrograms": "ug", "ml": "mL", "mls": "mL", "milliliter": "mL", "milliliters": "mL",
    "millilitre": "mL", "millilitres": "mL", "kg": "kg", "l": "L", "liter": "L", "liters": "L",
    "litre": "L", "litres": "L",
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
# Between two numbers of a range or list. Written so that every text has one reading: "1,000"
# is a number (a list needs ", "), "and" is only a joiner; ambiguous joiners made the regex
# backtrack exponentially on long number lists.
_SEP = r"(?:\s*[-–—]\s*|\s+(?:to|and|or)\s+|,\s+(?:(?:and|or)\s+)?)"

# "-1" as in "mg kg-1 day-1" (ASCII, Unicode minus or superscript)
_INV = r"(?:\s?(?:-|−|–)\s?1|⁻¹)(?![\d.])"
# per kilogram of body weight: "mg/kg", "mg kg-1", "mg·kg−1", "mg per kg (body weight)"
_PER_KG = (rf"\s?/\s?kg\b|\s?[·⋅]?\s?kg{_INV}|\s+per\s+kg\b"
           r"(?:\s+(?:of\s+)?body[\s-]?weight\b)?")
# A measured amount: number (or range, or list) + unit, the unit possibly repeated in a range.
_AMOUNT = re.compile(
    rf"(?<![\w.,\-/])(?P<nums>{_NUM}(?:(?:\s?(?:{_unit_alt}))?{_SEP}{_NUM}){{0,12}})"
    rf"(?:\s?\((?:sd\s?[=:]?\s?)?{_NUM}\))?[\s-]?"  # the SD of "7.3 (4.1) g/day"
    rf"(?P<unit>{_unit_alt})(?P<kg>{_PER_KG})?"
    rf"(?P<per>\s?/\s?(?:day|d|week|wk|dose|infusion|month|h|hr)\b|\s?[·⋅]?\s?(?:day|d){_INV})?"
    rf"(?P<conc>\s?/\s?(?:l|ml|dl|g|mg|m2|kg)\b)?(?![\w%])",
)
# A counted amount: "2 bottles", "three glasses", "1-2 capsules".
_COUNT = re.compile(
    rf"(?<![\w.,\-/])(?P<nums>(?:{_NUM}|{_word_alt})(?:{_SEP}(?:{_NUM}|{_word_alt}))?)\s+"
    rf"(?:(?!(?:were|was|are|is|of|the|and|or|to|in|had|have|as)\s)"
    rf"(?:[a-z]+|\d+(?:\.\d+)?-[a-z]+)\s+)?"  # "three large bottles", "five 16-oz bottles"
    rf"(?P<unit>{_count_alt})\b",
)
_NUMBER_IN = re.compile(_NUM)
# how _numbers cuts a list ("5, 10 and 20") and a range ("1-5", "2 to 6"), and what it strips
# from a bound; compiled once, not looked up in re's cache per amount
_LIST_SPLIT = re.compile(r",\s+(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_RANGE_SPLIT = re.compile(r"\s*(?:-|–|—|\bto\b)\s*")
_NOT_NUMBER = re.compile(r"[^\d.,\w]|[a-zµμ]+$", re.I)
_RANGE_IN = re.compile(r"\d\s*(?:-|–|—|to)\s*\d")
_AND = re.compile(r"\s+and\s+")
_SLASH_JUNK = re.compile(r"[\s/·⋅]|(?:-|−|–)1$|⁻¹$")
# "a daily dose of 76-94 mg", "daily intake of kratom leaf powder ranged from 1 g"
_DAILY_BEFORE = re.compile(r"\bdaily\s+(?:[a-z]+\s+){0,2}(?:dose|doses|dosage|intake|"
                           r"consumption|amount|use)\s+(?:of\s+(?:[\w-]+\s+){1,4}?)?"
                           r"(?:of|was|were|is|averaged|ranged)\s+"
                           r"(?:about\s+|approximately\s+|from\s+|between\s+)?$")
_NUMBER_CHARS = frozenset("0123456789.,")
_JOINERS = ("-", "–", "—", ",", " to", " and", " or", "between")
_BETWEEN = re.compile(r"\bbetween\s+$")
# "once a day" makes the amount a daily amount; "twice a day" makes it a per-dose one
_ONCE = (r"once\s+(?:a|per|each)\s+day\b|once[\s-]+daily\b|q\.?d\b(?!\.?s)\.?|nightly\b|"
         r"(?:every|each)\s+(?:morning|evening|night)\b|")
# how many times a day: "twice", "3 times", "three to four times", "2-3 times", "3x"
_TIMES = (r"(?:twice|thrice|\w+(?:\s*[-–—]\s*\w+|\s+(?:to|or)\s+\w+)?\s+times?|"
          r"\d+(?:\s*[-–—]\s*\d+)?\s?x)\s*(?:(?:a|per|each|every|/)\s*day\b|daily\b)")
_PER_AFTER = re.compile(
    rf"\s*(?:(?P<times>{_TIMES}|(?:q|b|t)\.?i\.?d\.?\b|(?:b\.?d|[tq]\.?d\.?s)\b\.?)|"
    rf"(?P<day>{_ONCE}(?:per|a|each|every|/)\s*day\b|daily\b|/d\b|a\s+day\b)|"
    r"(?:per|a|each|every|/)\s*(?P<other>week|month|infusion|dose|session|hour)s?\b|"
    r"(?P<weekly>weekly|monthly)\b)",
)
# a daily amount stated after the substance: "3 bottles of kratom juice daily", "2 g kratom
# leaf powder per day"
_PER_LATE = re.compile(
    rf"\s*(?:of\s+)?(?:[\w()-]+\s+){{0,3}}?(?:(?P<times>{_TIMES})|"
    rf"(?P<day>{_ONCE}(?:per|a|each|every)\s+day\b|daily\b)|(?:per|a|each|every)\s+"
    r"(?P<other>week|month|infusion)\b|(?P<weekly>weekly|monthly)\b)",
)
# a route or an aside between the amount and its period: "(50 mg/kg, p.o.) once daily",
# "6 g (range 2–24 g) per day", "(2–24 g) per day"
_ROUTE = re.compile(r"\s*(?:,?\s*(?:p\.?o|i\.?p|s\.?c|i\.?v|i\.?m|orally|oral|"
                    r"intraperitoneally|subcutaneously|intravenously|sublingually)\b\.?\)?|"
                    r"\([^()]{1,40}\)|\))")
_POTENCY = re.compile(
    r"(?:\b(?:ki|kd|ic50|ec50|ed50|ld50|td50|cmax|auc|lod|loq|ic₅₀|ed₅₀|emax|"
    r"concentrations?|levels?|limit of (?:detection|quantification)|contain(?:s|ed|ing)?|"
    r"content|yield(?:ed)?)\b)[^.;)]{0,25}$",  # "(" may follow: "the LD50 of the extract (591"
)
# what makes a mass or volume something other than an amount taken: an animal's weight
# ("rats (250–300 g)", "weighing 20 g"), a denominator ("0.5 g per 100 g of leaf"), a
# vehicle ("dissolved in 10 mL"), laboratory material ("extraction of 100 g") or a unit's
# strength ("(each 0.5 g)"); ends at the amount's start
_NOT_TAKEN_BEFORE = re.compile(
    r"(?:\b(?:rats?|mice|mouse|pups?|animals?|dogs?|rabbits?|monkeys?|piglets?)\s*[(\[]\s*"
    r"(?:weighing\s+)?|\bweigh(?:ing|ed|s|t|ts)?\s+(?:of\s+|was\s+|=\s*|:\s*)?|"
    r"\b(?:body[\s-]?weights?|bw)\s*(?:of\s+|was\s+|=\s*|:\s*|\(\s*)?|\bper\s+|"
    r"\b(?:dissolved|diluted|suspended|reconstituted)\s+in\s+|\bextraction\s+of\s+|"
    r"\(\s*each\s+(?:containing\s+|contains\s+)?)"
    r"(?:about\s+|approximately\s+|~\s*|≈\s*)?$")
# an amount per mass or volume of something else: "6.1 mg GAE/g extract", "231 mg ascorbic
# acid equivalent [AAE]/100 g"
_PER_MASS_AFTER = re.compile(r"[^\d.,;()/]{1,40}/\s?(?:100\s?)?(?:g|mg|ml|l)\b")
# a counted unit naming what was counted, not taken: "two pill samples", "3 capsule brands"
_COUNT_NOT_TAKEN = re.compile(r"\s*(?:samples?|products?|brands?|types?|varieties|vendors?)\b")
_RATE_AFTER = re.compile(r"\s?/\s?min\b")  # "2 L/min" of oxygen, "5 mg/min"
# after the amount: an animal's weight, a unit's strength ("2 mg each"), or material a
# laboratory worked up ("Leaves (500 g) were extracted")
_NOT_TAKEN_AFTER = re.compile(
    r"\s*(?:body[\s-]?weight\b|bw\b|each\s*(?:[),;]|\.(?!\d)|$)|[^.;]{0,30}?\b(?:was|were)\s+(?:extracted|"
    r"macerated|percolated|refluxed|defatted|partitioned|fractionated|dissolved)\b)")
# the word that can stand last before a _NOT_TAKEN_BEFORE amount (after a qualifier)
_NOT_TAKEN_LAST = frozenset({
    "weighing", "weighed", "weigh", "weighs", "weight", "weights", "of", "was", "bw", "per",
    "in", "each", "containing", "contains"})
_NOT_TAKEN_AFTER_HINTS = ("body", "bw", "each", "extracted", "macerated", "percolated",
                          "refluxed", "defatted", "partitioned", "fractionated", "dissolved")
_QUALIFIERS = frozenset({"about", "approximately", "~", "≈"})
# a word every _NOT_TAKEN_BEFORE match holds: a literal search costs a fifth of that regex's
# (its branches start with \b, so the engine tries every branch at every position)
_NOT_TAKEN_CUE = re.compile(r"rat|mice|mouse|pup|animal|dog|rabbit|monkey|piglet|weigh|body|bw|"
                            r"per|dissolved|diluted|suspended|reconstituted|extraction|each")
# substrings one of which a period after an amount needs ("day", "daily", "/d", "weekly",
# "b.i.d", "tid", "every morning" ...)
# (the most often present first: the test stops at the first found)
_PERIOD_HINTS = ("da", "dose", "id", "week", "/d", "session", "hour", "month", "infusion", "qd",
                 "q.d", "i.d", "night", "morning", "evening")
# "4.2 ± 3.1 g": the amount is the mean before "±", not the spread after it
_SPREAD_BEFORE = re.compile(rf"(?:(?P<mean>{_NUM})\s*)?(?:±|\+/-|\+-)\s*$")
_FLUID = re.compile(r"\s*(?:of\s+)?(?:whole\s+)?(?:blood|urine|plasma|serum|samples?|"
                    r"methanol|water|solvent|ethanol|acetonitrile|buffer)\b")
# Substance names, matched in lower-cased text (no ignore-case flag and no leading \b, so the regex
# engine can skip ahead to a possible first letter; word starts are checked in Python).
_SUBSTANCE = re.compile(
    r"(?:(?:dried |powdered |crushed )?kratom(?: (?:leaf|leaves|powder|tea|extract|"
    r"products?|juice))?|7-?hydroxy-?mitragynine|7 hydroxymitragynine|"
    r"mitragynine(?: pseudoindoxyl)?|speciogynine|speciociliatine|paynantheine|"
    r"corynantheidine|mitraphylline|extracts?|leaf powder|leaves|"
    r"buprenorphine(?:/naloxone)?|methadone|naloxone|naltrexone|morphine|heroin|fentanyl|"
    r"oxycodone|hydrocodone|tramadol|codeine|lofexidine|clonidine|gabapentin|pregabalin|"
    r"phenobarbital|diazepam|lorazepam|loperamide|quetiapine|olanzapine|caffeine|ethanol|"
    r"alcohol|acetaminophen|paracetamol|ketamine|cocaine|amphetamine|methamphetamine|"
    r"midazolam|nalbuphine|doxepin|tea)(?![a-z])"
)
_NOT_ADJECTIVES = frozenset({"the", "of", "a", "an", "and", "or", "with", "this", "that",
                             "mg", "g", "kg", "ml", "day", "per", "its", "their", "as"})
# substrings one of which every _POTENCY keyword holds, tested before that regex: "ic5", not
# "ic" or "ed", which most windows hold ("reported"), so the regex runs for 8 of 156 dev
# amounts instead of 104
_POTENCY_CUES = ("ki", "kd", "ic5", "ec5", "ed5", "ld5", "td5", "ic₅", "ed₅", "cmax", "emax",
                 "auc", "lod", "loq", "concentration", "level", "limit of", "contain", "content",
                 "yield")
_POTENCY_CUE = re.compile("|".join(map(re.escape, _POTENCY_CUES)))  # one call, not 20
# per sentence start: the sentence and its substance names
_Cache = dict[int, tuple[str, list[tuple[int, int]]]]


# Substance names as the extractor's automaton sees them (lower case, "-" as a space); the
# automaton's hits replace the _SUBSTANCE regex when the extractor passes them in.
SUBSTANCE_PHRASES = (
    "kratom", "dried kratom", "powdered kratom", "crushed kratom", "kratom leaf",
    "kratom leaves", "kratom powder", "kratom tea", "kratom extract", "kratom product",
    "kratom products", "kratom juice", "dried kratom leaf", "dried kratom leaves",
    "7 hydroxymitragynine", "7 hydroxy mitragynine", "mitragynine", "mitragynine pseudoindoxyl",
    "speciogynine", "speciociliatine", "paynantheine", "corynantheidine", "mitraphylline",
    "extract", "extracts", "leaf powder", "leaves", "buprenorphine", "buprenorphine naloxone",
    "methadone", "naloxone", "naltrexone", "morphine", "heroin", "fentanyl", "oxycodone",
    "hydrocodone", "tramadol", "codeine", "lofexidine", "clonidine", "gabapentin", "pregabalin",
    "phenobarbital", "diazepam", "lorazepam", "loperamide", "quetiapine", "olanzapine",
    "caffeine", "ethanol", "alcohol", "acetaminophen", "paracetamol", "ketamine", "cocaine",
    "amphetamine", "methamphetamine", "midazolam", "nalbuphine", "doxepin", "tea",
)
# Unit words as the extractor's automaton sees them (lower case, punctuation as spaces).
UNIT_WORDS = tuple(sorted({u.lower().replace("µ", "u").replace("μ", "u") for u in _UNITS}))
COUNTED_WORDS = tuple(sorted(_COUNTED))


def _value(token: str) -> float:
    word = _WORD_NUMBERS.get(token.lower())
    return float(word) if word is not None else float(token.replace(",", ""))


def _numbers(nums: str) -> list[tuple[float, float]]:
    """(low, high) pairs: one range "1-5" or a list "5, 10 and 20"."""
    plain = nums.replace(",", "")
    if plain.replace(".", "", 1).isdigit():  # the common case: one number
        value = float(plain)
        return [(value, value)]
    parts = _LIST_SPLIT.split(nums)
    if len(parts) == 1:
        bounds = _RANGE_SPLIT.split(nums.strip())
        values = [_value(_NOT_NUMBER.sub("", b) or b) for b in bounds if b.strip()]
        return [(min(values), max(values))] if values else []
    out = []
    for part in parts:
        out.extend(_numbers(part) if _RANGE_IN.search(part) else
                   [(v, v) for v in map(float, [p.replace(",", "") for p in
                                                _NUMBER_IN.findall(part)])])
    return out


def _sentence(text: str, sentence_start: int, end: int) -> str:
    """The sentence from ``sentence_start`` to the first ". " or line end after ``end``."""
    right, line_end = text.find(". ", end), text.find("\n", end)
    if right < 0 or 0 <= line_end < right:
        right = line_end
    return text[sentence_start : (right if right >= 0 else len(text)) + 1].strip()


def _period(low: str, start: int, end: int, slash: str | None) -> tuple[str | None, int]:
    """The period of the amount at ``start``..``end`` and where its text ends: stated after
    it, else "day" when a daily dose or intake introduces it ("a daily mitragynine dose of
    76-94 mg", "a mean daily consumption of 3.5 glasses")."""
    per, end = _per(low, end, slash)
    lo = start - 70 if start > 70 else 0  # a conditional, not max(): no call per amount
    if per is None and "daily" in low[lo:start] and _DAILY_BEFORE.search(low, lo, start):
        per = "day"
    return per, end


def _per(text: str, end: int, slash: str | None) -> tuple[str | None, int]:
    """The period after an amount, and where the amount's text ends."""
    if slash:
        word = _SLASH_JUNK.sub("", slash).lower()  # " / day", "·d−1" -> "day", "d"
        if word in ("day", "d"):
            return "day", end
        return {"wk": "week", "h": "hour", "hr": "hour"}.get(word, word), end
    if not _holds_any(text[end : end + 100], _PERIOD_HINTS):
        return None, end  # most amounts: no period word near, skip the three patterns
    m = _PER_AFTER.match(text, end) or _PER_LATE.match(text, end)
    route = None if m else _ROUTE.match(text, end)
    if route:
        m = _PER_AFTER.match(text, route.end()) or _PER_LATE.match(text, route.end())
    if not m:
        return None, end
    if m.group("times"):
        return None, end
    if m.group("day"):
        return "day", m.end()
    if m.group("weekly"):
        return m.group("weekly").lower()[:-2], m.end()
    return m.group("other").lower(), m.end()


def _holds_any(text: str, parts: tuple[str, ...]) -> bool:
    """Whether any of ``parts`` stands in ``text``: a plain loop, as any() over a generator
    costs twice as much here."""
    for part in parts:
        if part in text:
            return True
    return False


def _substance(names: list[tuple[int, int]], start: int,
               end: int) -> tuple[int, int] | None:
    """The substance named just after the amount ("4 g of kratom"), else the nearest before
    it in the sentence (``names``: the (start, end) of the sentence's substance names)."""
    before = None
    for span in names:
        at = span[0]
        if at >= end:
            return span if at <= end + 20 or before is None and at <= end + 40 else before
        if at < start:
            before = span
    return before


def _extract_adjective(text: str, start: int, end: int) -> str:
    """The name as written; a bare "extract" takes in its adjective ("methanolic extract")."""
    name = text[start:end]
    if name.lower().startswith("extract"):
        words = text[start - 30 if start > 30 else 0 : start].split()
        if words and words[-1].isalpha() and words[-1].lower() not in _NOT_ADJECTIVES:
            return f"{words[-1]} {name}"
    return name


def _find_substances(lowered: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """(start, end) of substance names in text[lo:hi], on word starts."""
    low = lowered[lo:hi]
    return [(lo + m.start(), lo + m.end()) for m in _SUBSTANCE.finditer(low)
            if not (m.start() and low[m.start() - 1].isalpha())]


def _excluded(text: str, start: int, end: int, unit: str) -> bool:
    before = text[start - 40 if start > 40 else 0 : start]
    if _POTENCY_CUE.search(before) and _POTENCY.search(before):
        return True
    if unit in ("g", "mg", "mL") and (_not_taken_before(before)
                                      or _not_taken_after(text, end)):
        return True
    return unit == "mL" and bool(_FLUID.match(text, end))


def _not_taken_before(before: str) -> bool:
    """_NOT_TAKEN_BEFORE, tried only when the last word before the amount could end it."""
    words = before.rsplit(None, 2)
    last = words[-1] if words else ""
    if last in _QUALIFIERS and len(words) > 1:
        last = words[-2].lstrip("([")
    return ((last in _NOT_TAKEN_LAST or last.endswith(("(", "[", "=", ":", "~", "≈")))
            and _NOT_TAKEN_CUE.search(before) is not None
            and _NOT_TAKEN_BEFORE.search(before) is not None)


def _not_taken_after(text: str, end: int) -> bool:
    """_NOT_TAKEN_AFTER, tried only when one of its words follows closely."""
    return (_holds_any(text[end : end + 45], _NOT_TAKEN_AFTER_HINTS)
            and _NOT_TAKEN_AFTER.match(text, end) is not None)


def find_doses(text: str, units: Sequence[int] | None = None,
               counted: Sequence[int] | None = None,
               substances: Sequence[tuple[int, int]] | None = None, *,
               lowered: str | None = None) -> list[Dose]:
    """Every dose in ``text`` (title and abstract joined), in text order.

    ``units`` / ``counted``: where unit words stand, ``substances``: (start, end) of substance
    names, all from the extractor's automaton pass; the regexes then only look at a few
    short spots, instead of the whole text. ``lowered``: ``lowered_text(text)`` when the
    caller has it already.
    """
    if units is not None and counted is not None and not units and not counted:
        return []  # the automaton saw no unit word: no amount to look at
    found: list[tuple[int, Dose]] = []
    seen: set[int] = set()
    cache: _Cache = {}
    if substances is not None:
        cache[-1] = ("", list(substances))
    low = lowered if lowered is not None else lowered_text(text)
    for m in _windows(_AMOUNT, low, units, 45, True):
        start = m.start()
        if start not in seen:
            seen.add(start)
            found.extend(_measured(text, low, m, cache))
    for m in _windows(_COUNT, low, counted, 40, False):
        start = m.start()
        if start not in seen:
            seen.add(start)
            found.extend(_counted(text, low, m, cache))
    found.sort(key=lambda pair: pair[0])
    return [dose for _, dose in found]


def _windows(pattern: re.Pattern[str], text: str, anchors: Sequence[int] | None, before: int,
             digits: bool) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` whose unit stands at an anchor (all matches without anchors).

    With anchors, the pattern is only tried at the numbers among the few words before each
    unit, earliest first, so "5, 10 and 20 mg/kg" is found whole.
    """
    if anchors is None:
        yield from pattern.finditer(text)
        return
    for p in anchors:
        if digits:
            if not (text[p - 1 : p].isdigit() or text[p - 2 : p - 1].isdigit()
                    or text[p - 2 : p - 1] == ")"):  # ")": "7.3 (4.1) g"
                continue  # a unit word with no number just before it
            single = _single_number(text, p)
            if single is not None:  # the common "10 mg": no range or list before it
                m = pattern.match(text, single)
                if m and m.start("unit") - 1 <= p <= m.end("unit"):
                    yield m
                continue
        for start in reversed(number_starts(text, max(0, p - before), p, 8)):
            m = pattern.match(text, start)
            if m and m.start("unit") - 1 <= p <= m.end("unit"):
                yield m
                break


def _single_number(text: str, p: int) -> int | None:
    """Where the number just before a unit at ``p`` starts, when nothing before it makes it
    part of a range or list ("1-5 g", "5, 10 and 20 mg/kg"): then one match attempt does."""
    i = p - 1
    if text[i] in " -":
        i -= 1
    if text[i] == ")":
        return None  # "7.3 (4.1) g": the mean starts further back
    while i > 0 and text[i - 1] in _NUMBER_CHARS:
        i -= 1
    before = text[max(0, i - 5) : i].rstrip()
    if before.endswith(_JOINERS) or before[-1:].isdigit():
        return None
    return i


def _measured(text: str, low: str, m: re.Match[str], cache: _Cache) -> list[tuple[int, Dose]]:
    written, conc, kg, slash, nums = m.group("unit", "conc", "kg", "per", "nums")  # one call
    unit, start, unit_end = _UNITS[written.lower()], m.start(), m.end()
    if (unit == "kg" or conc or _RATE_AFTER.match(low, unit_end)
            or _PER_MASS_AFTER.match(low, unit_end)):
        return []  # a body weight, a concentration, a composition or a flow, not a dose
    if unit == "L" and kg:
        return []  # "38 L/kg" is a volume of distribution
    scale = 1000.0 if unit == "L" else 1.0  # litres are reported as mL
    unit = "mL" if unit == "L" else unit
    if kg:
        unit += "/kg"
    if _excluded(low, start, unit_end, unit):
        return []
    mean = _mean(low, start, nums)
    if mean is None:
        return []
    start, nums = mean
    per, end = _period(low, start, unit_end, slash)
    return _make(text, low, start, unit_end, end, nums, unit, per, cache, scale)


def _mean(low: str, start: int, nums: str) -> tuple[int, str] | None:
    """Where the amount starts and its numbers, or None for a spread: "4.2 ± 3.1 g" is the
    mean 4.2, and the "3.1 g" of "4.2 g ± 3.1 g" is no amount (4.2 g is found by itself)."""
    head = low[start - 4 if start > 4 else 0 : start]
    if "+" not in head and "±" not in head[-3:]:
        return start, nums
    spread = _SPREAD_BEFORE.search(low, start - 30 if start > 30 else 0, start)
    if spread is None:
        return start, nums
    if not spread.group("mean"):
        return None
    return spread.start("mean"), spread.group("mean")


def _counted(text: str, low: str, m: re.Match[str], cache: _Cache) -> list[tuple[int, Dose]]:
    nums = m.group("nums")
    if nums.lower() in ("a", "an"):
        return []
    unit = _COUNTED[m.group("unit").lower()]
    if _COUNT_NOT_TAKEN.match(low, m.end()):
        return []
    mean = _mean(low, m.start(), nums)
    if mean is None:
        return []
    start, nums = mean
    per, end = _period(low, start, m.end(), None)
    return _make(text, low, start, m.end(), end, nums, unit, per, cache)


def _make(text: str, low: str, start: int, unit_end: int, end: int, nums: str, unit: str,
          per: str | None, cache: _Cache, scale: float = 1.0) -> list[tuple[int, Dose]]:
    left, line = text.rfind(". ", 0, start), text.rfind("\n", 0, start)
    sentence_start = (left if left > line else line) + 1
    known = cache.get(sentence_start)
    if known is None:
        sentence = _sentence(text, sentence_start, end)
        given = cache.get(-1)  # names found by the automaton, else look in the sentence
        stop = sentence_start + len(sentence) + 2
        names = ([span for span in given[1] if sentence_start <= span[0] < stop] if given
                 else _find_substances(low, sentence_start, stop))
        known = cache[sentence_start] = (sentence, names)
    sentence, names = known
    span = _substance(names, start, unit_end)
    substance = _extract_adjective(text, *span) if span else None
    shown = text[start:end].strip()
    lo = start - 9 if start > 9 else 0
    if "betw" in low[lo:start] and _BETWEEN.search(low, lo, start):
        nums = _AND.sub("-", nums)  # "between 1 and 5 g" is a range
    try:
        pairs = _numbers(nums)
    except ValueError:
        return []
    if scale != 1.0:
        pairs = [(round(a * scale, 6), round(b * scale, 6)) for a, b in pairs]
    out = []
    for low_value, high_value in pairs:
        out.append((start, built(Dose, text=shown, low=low_value, high=high_value, unit=unit,
                                 per=per, substance=substance, sentence=sentence)))
    return out


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
