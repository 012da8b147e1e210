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
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from kratomlit.models import built

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
    r"abusers?|addicts?|members?|visits?|admissions?|encounters?|reports?|pwuk|pwud|"
    r"surveys|questionnaires|responses"
)
# counted like people only for a sample-sized number ("129 evaluable surveys were
# collected"), not "two surveys" or "three questionnaires" (instruments)
_WEAK_NOUNS = ("surveys", "questionnaires", "responses")
_WEAK_MIN = 20
_LEAD = r"(?P<lead>(?:a\s+)?total\s+(?:sample\s+)?of|total\s+sample\s*\(|sample\s+(?:size\s+)?of|" \
        r"sample\s+consisted\s+of|" \
        r"(?:we\s+)?(?:surveyed|recruited|enrolled|interviewed|identified)|" \
        r"included|comprised|among|out\s+of)?\s*"
_CANDIDATE = re.compile(
    rf"(?:\b(?P<eq>n)\s*=\s*(?P<eqnum>\d{{1,3}}(?:,\d{{3}})+|\d+)(?![\d.])"
    rf"|\b{_LEAD}(?<![\w.\-])(?P<num>{_NUMBER})(?![\w.%]|-\w|\s*%|,\d)"
    rf"(?:\s+and\s+(?P<num2>\d{{1,3}}(?:,\d{{3}})+|\d+)(?![\w.%]))?"  # "196 and 330 users"
    rf"(?P<noun>\s+(?:[\w'’‐–-]+\s+){{0,4}}?(?:{_PEOPLE})\b)?)",
)
NUMBER_WORDS = tuple(_WORDS)
# People nouns as plain words, for the extractor's automaton (anchors for the regex).
PEOPLE_WORDS = tuple(w.rstrip("?").replace("-", " ")
                     for w in re.sub(r"s\?", "|s", _PEOPLE).replace("||", "|").split("|")
                     if w and w.rstrip("?") != "s")
_AFTER_GOOD = re.compile(
    r"\s*(?:\([^)]*\)\s*)?(?:were|was|had)?\s*(?:recruited|enrolled|included|surveyed|"
    r"interviewed|analy[sz]ed|identified|completed|participated|responded|"
    r"met\b|took part)",
)
# counts of things, not people: "n = 42 websites", "a total of 500 videos" (lower-cased text)
_THINGS = re.compile(r"\b(?:websites?|sites|vendors?|posts?|videos?|comments?|threads?|"
                     r"articles?|studies|products?|tweets?|pages?|items?|publications?|"
                     r"papers?)\b")
_THINGS_CUE = re.compile(r"site|vendor|post|video|comment|thread|article|studies|product|"
                         r"tweet|page|item|publication|paper")  # in every _THINGS match
_THINGS_BEFORE = re.compile(_THINGS.pattern + r"[’']?\s*\(\s*$")
# people drawn from the things: "patients from three treatment sites (n = 340)", "users
# recruited via forum posts (n = 120)"; the count is of the people, so it stands
_PEOPLE_FROM_THINGS = re.compile(
    rf"\b(?:{_PEOPLE})\b(?:\s+[\w-]+){{0,2}}?\s+(?:from|via|at|across|in|through|on|of)\s+"
    rf"(?:[\w'’-]+\s+){{0,3}}?{_THINGS.pattern}[’']?\s*\(\s*$")
_FRACTION = re.compile(r"[\s-]+(?:thirds?|quarters?|halves|half|fifths?|tenths?)\b")
_PUBLICATION = re.compile(r"\s+(?:reports?|series|stud)")  # "three case reports"
# "we present two case reports", "three case reports are described": the record's own cases
_OWN_CASES_BEFORE = re.compile(r"\b(?:present|presents|describe|describes|report|here)\s*$")
_OWN_CASES_AFTER = re.compile(r"\s+(?:reports?|series)\s+(?:are|were)\s+"
                              r"(?:presented|described|reported)")
# "Three were excluded", "three patients were excluded": a bare count or a count of people
_EXCLUDED = re.compile(rf"(?<![\w.,])(?P<num>{_NUMBER})(?:(?:\s+[a-z-]+)?\s+(?:{_PEOPLE}))?"
                       rf"\s+(?:were|was)\s+"
                       rf"(?:later\s+|subsequently\s+|further\s+|also\s+)?excluded")
# a threshold, not a count: "aged under 18 were excluded", "a BMI over 30 were excluded"
_THRESHOLD_BEFORE = re.compile(r"(?:\b(?:under|over|than|aged?|bmi|above|below|after|"
                               r"before|within|no)|[<>≤≥])\s*$")
# the count is already net of exclusions: "120 patients were included in the analysis"
_NET_AFTER = re.compile(r"\s*(?:\([^)]*\)\s*)?(?:were|was)\s+(?:finally\s+)?"
                        r"(?:included|analy[sz]ed|retained|eligible)")
_NET_LEADS = ("included", "analysed", "analyzed", "retained")
_AFTER_SUBGROUP = re.compile(r"\s*\(\s*\d+(?:\.\d+)?\s*(?P<pct>%)|\s*\(\s*\d+(?:\.\d+)?\)")
# what may stand before a count of people ("a total of 215 ..."), lower case, one space
_LEADS = ("a total of", "total of", "total sample of", "total sample (", "sample of",
          "sample size of", "sample consisted of", "surveyed", "recruited", "enrolled",
          "interviewed", "identified", "included", "comprised", "among", "out of")
# what makes the number something else: an age, a mean, a p-value, a part of a whole
_BAD_BEFORE = ("aged", "age", "ages", "mean", "median", "±", "p <", "p =", "p >", "p<", "p=",
               "of the")
# the cues' last words: a window that ends with none of them ends with no cue
_LEAD_ENDS = tuple({lead.split()[-1] for lead in _LEADS})
_BAD_ENDS = tuple({bad.split()[-1] for bad in _BAD_BEFORE})
_DIGIT = re.compile(r"\d")
_NOT_DIGITS = re.compile(r"[^\d]")  # "2,296", "59 714": the digits only
_WORD_SPLIT = re.compile(r"[\s-]+")  # "twenty-nine", "one hundred and six"
# ASCII characters that start no number and no number word, not even after the brackets and
# signs number_starts strips ("(12", "~20"): a word led by one is no number
_NO_NUMBER = frozenset(c for c in map(chr, range(33, 127))
                       if not (c.isdigit() or c.lower() in "otfsen" or c in "([<>~"))
_PART_OF = re.compile(r"\bof\s+(?:the\s+)?(?:\d|(?:" + _WORD_ALT + r")\b)", re.IGNORECASE)


MAX_PEOPLE = 10**10  # more than there are people: not a count of them (and stored JSON
# keeps to integers orjson reads exactly, see store.core.loads)


@dataclass(frozen=True)
class Count:
    """One candidate count: its value, score, where it starts, and the text shown."""

    value: int
    score: float
    start: int
    text: str


def lowered_text(text: str) -> str:
    """``text`` in lower case for the lower-case patterns (IGNORECASE is slower), or
    ``text`` itself in the rare case where lower-casing changes its length."""
    low = text.lower()
    return low if len(low) == len(text) else text


def _value(token: str) -> int:
    if token[0].isdigit():
        return int(token) if token.isdecimal() else int(_NOT_DIGITS.sub("", token))
    total = 0
    for word in _WORD_SPLIT.split(token.lower()):
        if word == "hundred":
            total = max(total, 1) * 100
        elif word in _WORDS:
            total += _WORDS[word]
    return total


def candidates(text: str, body_start: int, background_end: int,
               anchors: Sequence[int] | None = None,
               words: Sequence[int] | None = None, *,
               lowered: str | None = None) -> list[Count]:
    """Every count of people in ``text`` with its score (higher = more likely the sample).

    ``anchors`` (positions of people nouns, "N" and "total", from the extractor's one
    automaton pass) limit the regex to a few short spots; without them the whole text is
    scanned, which is several times slower. ``words``: where number words stand (sorted),
    so that a noun with neither digits nor number words before it is passed over.
    ``lowered``: ``lowered_text(text)`` when the caller has it already (doses use it too).
    """
    starts = _starts(text, anchors, words) if anchors is not None else None
    if starts == []:
        return []  # no number stands before any people noun
    out = []
    low = lowered if lowered is not None else lowered_text(text)
    if starts is None:
        for m in _CANDIDATE.finditer(low):
            count = _score(text, low, m, body_start, background_end, None)
            if count is not None:
                out.append(count)
        return out
    match = _CANDIDATE.match
    for start in starts:  # a plain loop: filter() over a generator costs more per start
        at = match(low, start)
        if at is not None:
            count = _score(text, low, at, body_start, background_end, _lead_before(text, start))
            if count is not None:
                out.append(count)
    return out


def _starts(text: str, anchors: Sequence[int], words: Sequence[int] | None) -> list[int]:
    """Where a count may start: an "N =" anchor itself, a number just after "total", or any
    number among the few words before a people noun (the regex then checks the whole)."""
    starts: set[int] = set()
    digit = _DIGIT.search
    for p in anchors:
        # background counts are scanned too (scored -2.5): a short abstract's first
        # sentence may be its only count, and the full scan (anchors=None) agrees
        first = text[p]
        if first in "Nn" and text[p + 1 : p + 2] in (" ", "="):
            starts.add(p)
        elif first in "Tt":  # "total": "a total of 215 ...", "total sample (18,457)"
            found = digit(text, p, p + 30)
            if found:
                starts.add(found.start())
        else:
            lo = p - 45 if p > 45 else 0
            if digit(text, lo, p) or words is None:
                starts.update(number_starts(text, lo, p, 5))
            else:  # a number word ("one" ... "ninety") in the 45 characters before p?
                i = bisect_left(words, lo)
                if i < len(words) and words[i] < p:
                    starts.update(number_starts(text, lo, p, 5))
    return sorted(starts)


def number_starts(text: str, lo: int, hi: int, last: int) -> list[int]:
    """Where numbers (digits or number words) start among the ``last`` words of text[lo:hi].

    Plain string operations: on short spans they are several times faster than a regex.
    """
    window = text[lo:hi]
    pos = len(window)
    out = []
    for word in reversed(window.split()[-last:]):
        pos = window.rfind(word, 0, pos)
        if word[0] in _NO_NUMBER:
            continue  # most words: a first character no number (word) starts with
        bare = word.lstrip("([<>≤≥~≈")
        if bare and (bare[0].isdigit() or bare.lower().split("-")[0].rstrip(",;") in _WORDS):
            out.append(lo + pos + len(word) - len(bare))
    return out


def _lead_before(text: str, start: int) -> str | None:
    """The cue just before a count ("a total of", "recruited" ...), if any."""
    window = text[start - 40 if start > 40 else 0 : start].lower()
    if not window.rstrip().endswith(_LEAD_ENDS):
        return None  # the usual case: no cue's last word ends the window
    before = " ".join(window.split())
    for lead in _LEADS:
        if before.endswith(lead):
            return lead
    return None


def _things_after(text: str, end: int) -> bool:
    """Whether the count is of things, not people ("n = 42 websites")."""
    window = text[end : end + 40].lower()
    if not _THINGS_CUE.search(window):
        return False  # no thing's name at all (the \b-led _THINGS is tried at every spot)
    stop, semi = window.find("."), window.find(";")
    if stop < 0 or 0 <= semi < stop:
        stop = semi if semi >= 0 else 40
    return bool(_THINGS.search(window, 0, stop))


def _not_people(low: str, m: re.Match[str], noun: str) -> bool:
    """A count of something else before the people noun: "five of the 10 participants"
    (take the 10), "11 articles with 23 patients" (take the 23), "three case reports",
    "one third of the students"."""
    gap = noun.rsplit(None, 1)[0] if noun.strip() else ""
    return bool(_PART_OF.search(noun) or _DIGIT.search(gap) or _THINGS.search(gap) or
                _FRACTION.match(low, m.end("num")) or
                (noun.endswith("case") and _PUBLICATION.match(low, m.end()) and
                 not _own_cases(low, m)))


def _own_cases(low: str, m: re.Match[str]) -> bool:
    """ "We present two case reports": the record's own cases, not published ones."""
    return bool(_OWN_CASES_BEFORE.search(low, max(0, m.start("num") - 30), m.start("num")) or
                _OWN_CASES_AFTER.match(low, m.end()))


def _bad_before(text: str, start: int) -> bool:
    """An age, mean, p-value or part of a whole stands just before the number."""
    window = text[start - 25 if start > 25 else 0 : start].lower()
    if not window.rstrip().endswith(_BAD_ENDS):
        return False  # the usual case: no cue's last word ends the window
    words = window.split()
    tail = " ".join(words[-3:])
    if not tail.endswith(_BAD_BEFORE):
        return False
    # "five of the 10 participants": the 10 is the whole, so keep it
    return not (tail.endswith("of the") and len(words) >= 3 and
                (words[-3][:1].isdigit() or words[-3] in _WORDS))


def _eq_count(text: str, low: str, m: re.Match[str]) -> tuple[int, float] | None:
    """ "N = 1,024" / "n = 70": value and base score, or None for things."""
    score = 3.0 if text[m.start("eq")] == "N" else 1.5
    if "%" in text[max(0, m.start() - 5) : m.start()]:
        score -= 1.5  # "4.6% (n = 162)": a subgroup's count
    if (_THINGS_BEFORE.search(low, max(0, m.start() - 30), m.start()) and
            not _PEOPLE_FROM_THINGS.search(low, max(0, m.start() - 90), m.start())):
        return None  # "vendors' websites (n = 42)": things, not people
    return _value(m.group("eqnum")), score


def _noun_count(text: str, low: str, m: re.Match[str],
                lead: str | None) -> tuple[int, float] | None:
    """ "a total of 215 participants were recruited": value and base score, or None."""
    token = m.group("num")
    lead, noun = lead or m.group("lead"), m.group("noun")
    if not noun and not (lead and "(" in lead):
        return None
    if token.isdigit() and 1900 <= int(token) <= 2035 and not lead:
        return None  # a year
    if _bad_before(text, m.start("num")) or _not_people(low, m, noun or ""):
        return None
    value = _value(token) + (_value(m.group("num2")) if m.group("num2") else 0)
    if noun and value < _WEAK_MIN and noun.rstrip().endswith(_WEAK_NOUNS):
        return None  # "two surveys": instruments, not a sample
    score = 2.0 + (2.0 if lead and "total" in lead.lower() else 0.5 if lead else 0.0)
    if _AFTER_GOOD.match(low, m.end()):
        score += 1.0
    return value, score


def _score(text: str, low: str, m: re.Match[str], body_start: int, background_end: int,
           lead: str | None) -> Count | None:
    found = _eq_count(text, low, m) if m.group("eq") else _noun_count(text, low, m, lead)
    if found is None or not 0 < found[0] <= MAX_PEOPLE or _things_after(text, m.end()):
        return None
    value, score = found
    subgroup = _AFTER_SUBGROUP.match(low, m.end())
    if subgroup:  # "27 cases (84%)": a share of a larger sample, however it is introduced
        # ... unless the share is the sample: "420 respondents (84%) completed the survey"
        pct = subgroup.group("pct") and not _AFTER_GOOD.match(low, m.end())
        score -= 3.0 if pct else 1.5
    if m.start() < body_start:
        score += 0.5  # the title names the sample ("... from ten cases")
    elif m.start() < background_end:
        score -= 2.5
    return built(Count, value=value, score=score, start=m.start(), text=m.group(0).strip())


def sample_size(text: str, body_start: int, background_end: int,
                anchors: Sequence[int] | None = None,
                words: Sequence[int] | None = None, *,
                lowered: str | None = None) -> Count | None:
    """The best-scoring count of people, or None when the abstract gives none."""
    best: Count | None = None
    low = lowered if lowered is not None else lowered_text(text)
    for count in candidates(text, body_start, background_end, anchors, words, lowered=low):
        if count.score > 0 and (best is None or count.score > best.score):
            best = count
    return _minus_excluded(low, best) if best is not None else None


def _minus_excluded(low: str, best: Count) -> Count:
    """ "A total of fifteen cases were identified. Three were excluded ...": 12 analysed.

    Only the two sentences after the count are read, only a smaller count of people
    subtracts (not a threshold: "aged under 18 were excluded"), and a count stated as
    included or analysed is already net ("120 were included after 30 were excluded").
    """
    end = best.start + len(best.text)
    if "excluded" not in low[end : end + 250]:
        return best  # the only way _EXCLUDED can match (most abstracts exclude no one)
    if (_NET_AFTER.match(low, end) or
            " ".join(low[max(0, best.start - 40) : best.start].split()).endswith(_NET_LEADS) or
            best.text.lower().startswith(_NET_LEADS)):
        return best
    window = low[end : end + 250]
    for m in _EXCLUDED.finditer(window):
        if window.count(". ", 0, m.start()) > 1:
            break
        if _THRESHOLD_BEFORE.search(window, max(0, m.start() - 12), m.start()):
            continue
        gone = _value(m.group("num"))
        if 0 < gone < best.value:
            return Count(best.value - gone, best.score, best.start, best.text)
        break
    return best
