"""The number of people an abstract analysed (DESIGN.md's ``n``), or None.

Why candidates and scores rather than the first number: abstracts state several counts
("Of 4,945 people who use kratom, a total of 2,296 respondents completed the survey; 544
(2.9%) had ..."). Each count of people is a candidate; cues that mark the whole analysed
sample ("a total of", "N =", "were recruited", "completed the survey") raise it, a following
percentage (a subgroup) or a place in the background lowers it, and the best one wins (the
earliest on a tie). Ages, years, percentages, p-values and doses never match: a candidate
needs a people noun after it, an "N =" before it, or "a total of".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
          "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
          "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
          "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORD_ALT = "|".join(sorted(_WORDS, key=len, reverse=True))
# digits ("2,296", "59 714"), or number words ("one hundred and six", "twenty-nine")
_NUMBER = (rf"(?:\d{{1,3}}(?:,\d{{3}})+|\d{{1,3}}(?:[ \u2009\u202f]\d{{3}})+(?!\d)|\d+|"
           rf"(?:{_WORD_ALT})(?:(?:[\s-]+(?:and\s+)?)(?:hundred|{_WORD_ALT})\b)*)")
_PEOPLE = (
    r"participants?|patients?|respondents?|subjects?|individuals?|people|persons?|adults?|"
    r"adolescents?|youths?|users?|consumers?|cases?|case-patients|decedents?|deaths?|"
    r"fatalities|exposures?|calls?|veterans?|students?|volunteers?|men|women|males?|"
    r"females?|children|infants?|neonates?|newborns?|mothers?|pharmacists?|physicians?|"
    r"villagers?|workers?|outpatients?|inpatients?|drivers?|samples?|records?|informants?|"
    r"interviewees?|autopsies|autopsy cases|clients?|residents?|smokers?|drinkers?|"
    r"abusers?|addicts?|members?|visits?|admissions?|encounters?|reports?|PWUK|PWUD"
)
_LEAD = r"(?P<lead>(?:a\s+)?total\s+(?:sample\s+)?of|total\s+sample\s*\(|sample\s+(?:size\s+)?of|" \
        r"sample\s+consisted\s+of|(?:we\s+)?(?:surveyed|recruited|enrolled|interviewed)|" \
        r"included|comprised|among|out\s+of)?\s*"
_CANDIDATE = re.compile(
    rf"(?:\b(?P<eq>[Nn])\s*=\s*(?P<eqnum>\d{{1,3}}(?:,\d{{3}})+|\d+)(?![\d.])"
    rf"|\b{_LEAD}(?<![\w.\-])(?P<num>{_NUMBER})(?![\w.%]|-\w|\s*%|,\d)"
    rf"(?P<noun>\s+(?:[\w'’‐–-]+\s+){{0,4}}?(?:{_PEOPLE})\b)?)",
    re.IGNORECASE,
)
_LEAD_BEFORE = re.compile(_LEAD.replace("(?P<lead>", "(?:") + r"$", re.IGNORECASE)
_TOKEN = re.compile(r"[\w,]+")
# People nouns as plain words, for the extractor's automaton (anchors for the regex).
PEOPLE_WORDS = tuple(w.rstrip("?").replace("-", " ")
                     for w in re.sub(r"s\?", "|s", _PEOPLE).replace("||", "|").split("|")
                     if w and w.rstrip("?") != "s")
_AFTER_GOOD = re.compile(
    r"\s*(?:\([^)]*\)\s*)?(?:were|was|had)?\s*(?:recruited|enrolled|included|surveyed|"
    r"interviewed|analy[sz]ed|identified|completed|participated|responded|reported|"
    r"met\b|took part)",
    re.IGNORECASE,
)
# counts of things, not people: "n = 42 websites", "a total of 500 videos"
_THINGS = re.compile(r"[^.;]{0,40}?\b(?:websites?|sites|vendors?|posts?|videos?|comments?|"
                     r"threads?|articles?|studies|products?|tweets?|pages?|items?|"
                     r"publications?|papers?)\b", re.IGNORECASE)
_AFTER_SUBGROUP = re.compile(r"\s*\(\s*\d+(?:\.\d+)?\s*%|\s*\(\s*\d+(?:\.\d+)?\)", re.IGNORECASE)
_BEFORE_BAD = re.compile(r"(?:aged?|ages|mean|median|±|p\s*[<=>]|of\s+the)\s*$",
                         re.IGNORECASE)


@dataclass(frozen=True)
class Count:
    """One candidate count: its value, score, where it starts, and the text shown."""

    value: int
    score: float
    start: int
    text: str


def _value(token: str) -> int:
    if token[0].isdigit():
        return int(re.sub(r"[^\d]", "", token))
    total = 0
    for word in re.split(r"[\s-]+", token.lower()):
        if word == "hundred":
            total = max(total, 1) * 100
        elif word in _WORDS:
            total += _WORDS[word]
    return total


def candidates(text: str, body_start: int, background_end: int,
               anchors: Sequence[int] | None = None) -> list[Count]:
    """Every count of people in ``text`` with its score (higher = more likely the sample).

    ``anchors`` (positions of people nouns, "N" and "total", from the extractor's one
    automaton pass) limit the regex to a few short spots; without them the whole text is
    scanned, which is several times slower.
    """
    starts = _starts(text, anchors) if anchors is not None else None
    out = []
    matches = (_CANDIDATE.finditer(text) if starts is None else
               filter(None, (_CANDIDATE.match(text, s) for s in starts)))
    for m in matches:
        lead = _LEAD_BEFORE.search(text, max(0, m.start() - 40), m.start())
        count = _score(text, m, body_start, background_end, lead.group(0) if lead else None)
        if count is not None:
            out.append(count)
    return out


def _starts(text: str, anchors: Sequence[int]) -> list[int]:
    """Where a count may start: an anchor itself ("N ="), or a number shortly before it."""
    starts: set[int] = set()
    for p in anchors:
        if text[p] in "Nn" and text[p + 1 : p + 2] in (" ", "="):
            starts.add(p)
            continue
        tokens = list(_TOKEN.finditer(text, max(0, p - 60), p))[-6:]
        number_at = None
        for tok in reversed(tokens):
            word = tok.group(0)
            if word[0].isdigit() or word.lower().split("-")[0] in _WORDS or \
                    word.lower() in ("hundred", "and") and number_at is not None:
                number_at = tok.start() if word.lower() != "and" else number_at
            elif number_at is not None:
                break
        if number_at is not None:
            starts.add(number_at)
    return sorted(starts)


def _score(text: str, m: re.Match[str], body_start: int, background_end: int,
           lead: str | None) -> Count | None:
    if m.group("eq"):
        value, score = _value(m.group("eqnum")), 3.0 if m.group("eq") == "N" else 1.5
        if "%" in text[max(0, m.start() - 5) : m.start()]:
            score -= 1.5  # "4.6% (n = 162)": a subgroup's count
    else:
        token = m.group("num")
        lead, noun = lead or m.group("lead"), m.group("noun")
        if not noun and not (lead and "(" in lead):
            return None
        if token.isdigit() and 1900 <= int(token) <= 2035 and not lead:
            return None  # a year
        if _BEFORE_BAD.search(text, max(0, m.start() - 12), m.start("num")):
            return None
        value = _value(token)
        score = 2.0 + (2.0 if lead and "total" in lead.lower() else 0.5 if lead else 0.0)
        if _AFTER_GOOD.match(text, m.end()):
            score += 1.0
    if value == 0 or _THINGS.match(text, m.end()):
        return None
    if _AFTER_SUBGROUP.match(text, m.end()):
        score -= 1.5
    if m.start() < body_start:
        score += 0.5  # the title names the sample ("... from ten cases")
    elif m.start() < background_end:
        score -= 2.5
    return Count(value, score, m.start(), m.group(0).strip())


def sample_size(text: str, body_start: int, background_end: int,
                anchors: Sequence[int] | None = None) -> Count | None:
    """The best-scoring count of people, or None when the abstract gives none."""
    best: Count | None = None
    for count in candidates(text, body_start, background_end, anchors):
        if count.score > 0 and (best is None or count.score > best.score):
            best = count
    return best
