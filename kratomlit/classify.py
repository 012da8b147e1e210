"""Multi-label topic classifier for kratom abstracts: a weighted lexicon read in one pass.

Why this design (details and numbers in docs/classifier.md):

* The knowledge lives in ``data/topics.toml`` (phrases, MeSH headings, weights, cues), so a
  reviewer can see why a topic fired and change it without touching code.
* Speed without caching: the text becomes ASCII of the same length (Greek letters and dashes
  get one-character stand-ins, other non-ASCII characters a space), goes through one
  ``bytes.translate`` (lower-cased, punctuation to spaces), and one Aho-Corasick pass
  (pyahocorasick, leftmost-longest) finds every lexicon phrase and cue. Keys start with a
  space, so the automaton idles inside words; only hits are checked in Python, and offsets
  index the original string directly for evidence.
* Where a phrase stands matters more than that it occurs: the title counts 1.5x, the
  background (a BACKGROUND section, the sentences before the study is introduced, or a
  sentence reciting traditional use) 0.25x and, in total, at most ``background_cap``; a
  phrase just after a hedge ("may", "potentially") counts half. Negated mentions are kept
  ("no withdrawal signs were observed" is about withdrawal).
* Each topic sums its phrase values (a repeated phrase adds only a share) and scores
  ``1 - exp(-sum)`` in [0, 1]; a per-topic threshold decides.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from operator import itemgetter
from pathlib import Path
from typing import Any

import ahocorasick

from kratomlit.models import TOPICS, Evidence

CODE_VERSION = "1.1"  # bump whenever scoring code changes what labels come out
SOURCES = ("title", "abstract", "mesh", "keywords", "publication_types")

# Kinds of automaton entries (bit flags: one key may be several kinds at once).
_TOPICAL, _CUE, _HEDGE, _BG_LABEL, _LABEL, _AMOUNT = (1 << i for i in range(6))
_CUE_KINDS = {"study": _CUE, "hedge": _HEDGE, "background_labels": _BG_LABEL,
              "section_labels": _LABEL}
_GREEK = {"mu": ("µ", "μ"), "kappa": ("κ",), "delta": ("δ",), "beta": ("β",),
          "alpha": ("α",), "gamma": ("γ",)}
_DASHES = (" ", "")  # "-" itself reads as a space
# One-character ASCII stand-ins, so offsets in the matched text equal offsets in the original.
_STANDINS = (("µ", "\x01"), ("μ", "\x01"), ("κ", "\x02"), ("δ", "\x03"), ("β", "\x04"),
             ("α", "\x05"), ("γ", "\x06"), ("\u2010", "-"), ("\u2011", "-"), ("\u2013", "-"),
             ("\u2014", "-"), ("\u00a0", " "))
_SCORING_KEYS = ("title", "body", "background", "background_cap", "keywords", "mesh",
                 "publication_types", "hedge", "hedge_window", "repeat")
_SHOW_NUMBER, _SHOW_WORD = 1, 2  # how evidence widens a hit: take in the number / the word
_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NUMBER_CHARS = frozenset("0123456789.,-–")

# An automaton value, laid out for the per-hit loop: the characters that must not follow the
# key (word characters, or none for a prefix such as "hepatotox*"), key length - 2 (so a hit's
# start is ``end - entry[1]``), whether the key is a plain topical phrase (no cue, no amount),
# phrase label, ((topic, weight), ...), evidence display (0 / _SHOW_NUMBER / _SHOW_WORD),
# kind flags, and whether the key is a hedge.
Entry = tuple[frozenset[str], int, bool, str, tuple[tuple[int, float], ...], int, int, bool]
_NOTHING: frozenset[str] = frozenset()
# Per phrase label: [best multiplier, summed multipliers, weights, source, context for the
# evidence (text, matched text, abstract start, sentence cache) or None for a heading,
# start offset or heading name, end offset or heading as given, evidence display].
_Acc = dict[str, list[Any]]
_Ctx = tuple[str, str, int, dict[int, str]]  # text, matched text, abstract start, sentences
_first, _second = itemgetter(0), itemgetter(1)


def _make_table() -> bytes:
    """Byte map for matching: letters lower-cased, digits, '.' and stand-ins kept, rest space."""
    table = bytearray(b" " * 256)
    for b in range(128):
        char = chr(b)
        if char.isalnum() or char == "." or 0 < b < 0x07:
            table[b] = ord(char.lower())
    return bytes(table)


_TABLE = _make_table()


def _matchable(text: str) -> str:
    """What the automaton reads: an ASCII str as long as ``text``, offsets shared."""
    if not text.isascii():
        for char, standin in _STANDINS:
            if char in text:
                text = text.replace(char, standin)
    return text.encode("ascii", "replace").translate(_TABLE).decode("ascii")


class LexiconError(Exception):
    """The lexicon file is missing or malformed; the message names the file and problem."""


@dataclass(frozen=True)
class Classification:
    """Topics decided for one record, with every topic's score and evidence."""

    topics: list[str]
    scores: dict[str, float]
    evidence: dict[str, list[Evidence]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: topics, scores, evidence as phrase/sentence/source dicts."""
        return {
            "topics": list(self.topics),
            "scores": dict(self.scores),
            "evidence": {
                t: [e.to_dict() for e in ev]
                for t, ev in self.evidence.items()
            },
        }


# -- building the automaton -------------------------------------------------------------------
def _plural(phrase: str) -> str:
    if phrase.endswith("y") and not phrase.endswith(("ay", "ey", "oy")):
        return phrase[:-1] + "ies"
    return phrase + ("es" if phrase.endswith(("s", "x", "ch", "sh")) else "s")


def _variants(phrase: str, plural: bool) -> set[str]:
    """Automaton keys for a phrase: dash forms, Greek letters, plural; each led by a space."""
    parts = re.split(r"([- ])", phrase)
    options = [(_DASHES if part == "-" else (" ",)) if i % 2 else (part, *_GREEK.get(part, ()))
               for i, part in enumerate(parts)]
    forms = {"".join(combo) for combo in product(*options)}
    if plural:
        forms |= {_plural(f) for f in forms}
    return {" " + _matchable(f).strip() for f in forms if f.strip()}


class _LexiconBuilder:
    """Collects phrases and cues, merging entries that share a key, then builds the automaton."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[int, str, dict[int, float], bool]] = {}

    def add(self, key: str, flags: int, label: str, topic: int | None, weight: float,
            prefix: bool = False) -> None:
        old_flags, old_label, weights, old_prefix = self.keys.get(key, (0, label, {}, False))
        if topic is not None:  # the same phrase listed twice in one topic: keep the stronger
            weights[topic] = max(weights.get(topic, 0.0), weight, key=abs)
        self.keys[key] = (old_flags | flags, old_label, weights, old_prefix or prefix)

    def add_phrase(self, phrase: str, flags: int, topic: int | None, weight: float) -> None:
        prefix = phrase.endswith("*")
        label = phrase.rstrip("*").strip().lower()
        for key in _variants(label, plural=not prefix and flags == _TOPICAL):
            self.add(key, flags, label, topic, weight, prefix)

    def add_amount(self, unit: str, topic: int, weight: float) -> None:
        """A unit after a number, ' mg' ('5 mg'; the number is checked on hits)."""
        label = unit.strip().lower()
        for form in {label, label.replace("µ", "u")}:
            self.add(" " + _matchable(form).strip(), _TOPICAL | _AMOUNT, label, topic, weight)

    def build(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton()
        for key, (flags, label, weights, prefix) in self.keys.items():
            display = _SHOW_WORD if prefix else _SHOW_NUMBER if flags & _AMOUNT else 0
            entry: Entry = (_NOTHING if prefix else _WORD, len(key) - 2, flags == _TOPICAL,
                            label, tuple(sorted(weights.items())), display, flags,
                            bool(flags & _HEDGE))
            automaton.add_word(key, entry)
        automaton.make_automaton()
        return automaton


# -- reading the lexicon file -----------------------------------------------------------------
def _fail(path: Path, problem: str) -> LexiconError:
    return LexiconError(f"{path}: {problem}")


def _number(path: Path, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"{where} must be a number, got {value!r}")
    return float(value)


def _table(path: Path, data: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    value = data.get(name, None if required else {})
    if not isinstance(value, dict):
        raise _fail(path, f"missing or invalid table [{name}]")
    return value


def _weights(path: Path, table: dict[str, Any], where: str) -> dict[str, float]:
    return {k: _number(path, f"{where}.{k!r}", v) for k, v in table.items()}


@dataclass(frozen=True)
class _Scoring:
    title: float
    body: float
    background: float
    background_cap: float
    keywords: float
    mesh: float
    publication_types: float
    hedge: float
    hedge_window: float
    repeat: float


def _is_label(text: str, start: int, end: int) -> bool:
    """A section label is capitalised, opens a line or sentence, ends with ':' or a break."""
    if not text[start].isupper():
        return False
    j = start - 1
    while j >= 0 and text[j] == " ":
        j -= 1
    if j >= 0 and text[j] not in "\n.:;)":
        return False
    after = text[end + 1 : end + 3]
    return not after.strip() or after[:1] in ":\n" or (after[:1] == " " and after[1:].isupper())


class _Zones:
    """Where the background of one abstract ends, decided while the hits stream by.

    The background is a leading BACKGROUND/INTRODUCTION section (up to the next section
    label), or else the sentences before the first one that introduces the study ("we",
    "this study", "aimed", "year-old" ...), or, with neither, the first sentence (none when
    the abstract is a single sentence).
    """

    __slots__ = ("body", "end", "bg_label")

    def __init__(self, body: int) -> None:
        self.body = body  # where the abstract starts (after the title)
        self.end = -1  # end of the background, once known
        self.bg_label = False

    def note(self, text: str, m: str, start: int, end: int, flags: int) -> None:
        """Take in a cue or section label (only the first decisive one matters)."""
        if self.end >= 0 or start < self.body:
            return
        if flags & _CUE:
            self.end = max(m.rfind(". ", self.body, start) + 2, self.body)
        elif flags & (_BG_LABEL | _LABEL) and _is_label(text, start, end):
            if flags & _BG_LABEL and start < self.body + 40:
                self.bg_label = True
            elif flags & _LABEL and self.bg_label:
                self.end = start

    def finish(self, m: str) -> None:
        if self.end < 0:
            # a one-sentence abstract has no background: that sentence is the content
            first = m.find(". ", self.body)
            alone = first < 0 or not m[first + 2:].strip()
            self.end = self.body if alone else first + 2


class Classifier:
    """Scores title/abstract/MeSH/keywords/publication types against the topic lexicon."""

    def __init__(self, data: dict[str, Any], path: Path, version: str) -> None:
        self.path = path
        self.version = version
        self.thresholds: dict[str, float] = {}
        self._mesh: dict[str, list[tuple[int, float]]] = {}
        self._qualifiers: dict[str, list[tuple[int, float]]] = {}
        self._pubtypes: dict[str, list[tuple[int, float]]] = {}
        self._scoring = self._read_scoring(data)
        builder = _LexiconBuilder()
        self._read_cues(data, builder)
        for index, topic in enumerate(TOPICS):
            self._read_topic(data, topic, index, builder)
        self._read_off_topic(data, builder)
        self._read_pubtypes(data)
        self._automaton = builder.build()
        self._topic_thresholds = tuple((t, self.thresholds[t]) for t in TOPICS)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | None = None) -> Classifier:
        """Read a lexicon file (default: the packaged ``data/topics.toml``)."""
        path = Path(path) if path is not None else default_lexicon_path()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _fail(path, f"cannot read lexicon ({exc.strerror or exc})") from exc
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise _fail(path, f"not valid TOML ({exc})") from exc
        return cls(data, path, lexicon_version(raw))

    def _read_scoring(self, data: dict[str, Any]) -> _Scoring:
        table = _table(self.path, data, "scoring")
        missing = [k for k in _SCORING_KEYS if k not in table]
        if missing:
            raise _fail(self.path, f"[scoring] lacks {', '.join(missing)}")
        values = {k: _number(self.path, f"scoring.{k}", table[k]) for k in _SCORING_KEYS}
        thresholds = _table(self.path, data, "thresholds")
        for topic in TOPICS:
            value = _number(self.path, f"thresholds.{topic}", thresholds.get(topic))
            if not 0.0 < value < 1.0:
                raise _fail(self.path, f"thresholds.{topic} must be between 0 and 1")
            self.thresholds[topic] = value
        return _Scoring(**values)

    def _read_cues(self, data: dict[str, Any], builder: _LexiconBuilder) -> None:
        cues = _table(self.path, data, "cues")
        for name, flag in _CUE_KINDS.items():
            phrases = cues.get(name)
            if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                raise _fail(self.path, f"cues.{name} must be a list of strings")
            for phrase in phrases:
                builder.add_phrase(phrase, flag, None, 0.0)

    def _read_topic(self, data: dict[str, Any], topic: str, index: int,
                    builder: _LexiconBuilder) -> None:
        section = _table(self.path, data, topic)
        terms = _weights(self.path, _table(self.path, section, "terms"), f"{topic}.terms")
        for phrase, weight in terms.items():
            builder.add_phrase(phrase, _TOPICAL, index, weight)
        amounts = _table(self.path, section, "amounts", required=False)
        for unit, weight in _weights(self.path, amounts, f"{topic}.amounts").items():
            builder.add_amount(unit, index, weight)
        for name, target in (("mesh", self._mesh), ("qualifiers", self._qualifiers)):
            table = _table(self.path, section, name, required=False)
            for heading, weight in _weights(self.path, table, f"{topic}.{name}").items():
                target.setdefault(heading.lower(), []).append((index, weight))

    def _read_off_topic(self, data: dict[str, Any], builder: _LexiconBuilder) -> None:
        section = _table(self.path, data, "off_topic", required=False)
        terms = _table(self.path, section, "terms", required=False)
        for phrase, weight in _weights(self.path, terms, "off_topic.terms").items():
            for index in range(len(TOPICS)):
                builder.add_phrase(phrase, _TOPICAL, index, weight)

    def _read_pubtypes(self, data: dict[str, Any]) -> None:
        table = _table(self.path, data, "publication_types", required=False)
        for ptype, topics in table.items():
            if not isinstance(topics, dict) or not set(topics) <= set(TOPICS):
                raise _fail(self.path, f"publication_types.{ptype!r} must map topics to weights")
            weights = _weights(self.path, topics, f"publication_types.{ptype!r}")
            self._pubtypes[ptype.lower()] = [(TOPICS.index(t), w) for t, w in weights.items()]

    # -- classifying -----------------------------------------------------------------------
    def classify(self, title: str | None, abstract: str | None, mesh: Sequence[str] = (),
                 keywords: Sequence[str] = (),
                 publication_types: Sequence[str] = ()) -> Classification:
        """Score one record. Only title/abstract are needed; MeSH etc. add evidence."""
        acc: _Acc = {}  # found in the foreground (title, body, keywords, headings)
        background: _Acc = {}  # found in the background
        if title or abstract:
            self._score_text(title or "", abstract or "", acc, background)
        if keywords:
            self._score_keywords(keywords, acc)
        if mesh:
            self._score_mesh(mesh, acc)
        if publication_types:
            headings = [(p.strip(), p.strip()) for p in publication_types]
            self._score_headings(headings, self._pubtypes, "publication_types",
                                 self._scoring.publication_types, acc)
        return self._decide(acc, background)

    def _score_text(self, title: str, abstract: str, acc: _Acc, bg_acc: _Acc) -> None:
        """One pass over title + abstract: zone and hedge every phrase as it streams by.

        The hits come in text order. Until the background's end is known (``_scan_lead``),
        abstract phrases wait; from there on every phrase is in the body (``_scan_body``),
        so the rest of the same pass runs a shorter loop.
        """
        text = f" {title}\n{abstract} "
        m = _matchable(text)
        # ctx: what evidence needs later (text, matched text, where the abstract starts, and
        # the sentences already cut out, by the offset of the '. ' before them)
        ctx: _Ctx = (text, m, len(title) + 2, {})
        hits = self._automaton.iter_long(m)
        hedge_end = self._scan_lead(hits, ctx, acc, bg_acc)
        if hedge_end is not None:
            self._scan_body(hits, ctx, acc, hedge_end)

    def _scan_lead(self, hits: Iterator[tuple[int, Entry]], ctx: tuple[Any, ...], acc: _Acc,
                   bg_acc: _Acc) -> int | None:
        """Title and abstract up to the background's end; returns where the last hedge ended,
        or None when the hits ran out first."""
        text, m, body_start, _ = ctx
        sc = self._scoring
        zones = _Zones(body_start)
        pending: list[tuple[int, int, Entry, float]] = []  # abstract phrases, zone unknown
        hedge_end, window, hedged, title = -1_000_000, sc.hedge_window, sc.hedge, sc.title
        for end, entry in hits:
            if m[end + 1] in entry[0]:  # the word goes on
                continue
            start = end - entry[1]
            flags = entry[6]
            if entry[2] or (flags & _TOPICAL and start > 1 and m[start - 2].isdigit()):
                # a hedge shortly before, in the same sentence, makes the mention speculative
                hedge = hedged if hedge_end >= start - window and m.find(
                    ". ", hedge_end, start) < 0 else 1.0
                if start < body_start:  # _add() inlined
                    mult = title * hedge
                    item = acc.get(entry[3])
                    if item is None:
                        acc[entry[3]] = [mult, mult, entry[4], "title", ctx, start, end, entry[5]]
                    else:
                        item[1] += mult
                        if mult > item[0]:
                            item[0], item[3], item[5], item[6] = mult, "title", start, end
                else:
                    pending.append((start, end, entry, hedge))
            if not entry[2]:
                if flags & _HEDGE:
                    hedge_end = end
                zones.note(text, m, start, end, flags)
                if zones.end >= 0:
                    self._flush(acc, bg_acc, zones.end, ctx, pending)
                    return hedge_end
        zones.finish(m)
        self._flush(acc, bg_acc, zones.end, ctx, pending)
        return None

    def _scan_body(self, hits: Iterator[tuple[int, Entry]], ctx: tuple[Any, ...], acc: _Acc,
                   hedge_end: int) -> None:
        """The rest of the abstract, all body: the hot loop, with ``_add()`` inlined."""
        m = ctx[1]
        sc = self._scoring
        window, body, hedged = sc.hedge_window, sc.body, sc.body * sc.hedge
        get = acc.get
        for end, entry in hits:
            if m[end + 1] in entry[0]:  # the word goes on
                continue
            start = end - entry[1]
            if entry[2] or (entry[6] & _TOPICAL and start > 1 and m[start - 2].isdigit()):
                if hedge_end >= start - window and m.find(". ", hedge_end, start) < 0:
                    mult = hedged
                else:
                    mult = body
                item = get(entry[3])
                if item is None:
                    acc[entry[3]] = [mult, mult, entry[4], "abstract", ctx, start, end, entry[5]]
                else:
                    item[1] += mult
                    if mult > item[0]:
                        item[0], item[3], item[5], item[6] = mult, "abstract", start, end
            if entry[7]:
                hedge_end = end

    def _flush(self, acc: _Acc, bg_acc: _Acc, bg_end: int, ctx: tuple[Any, ...],
               pending: list[tuple[int, int, Entry, float]]) -> None:
        """Place the abstract's early phrases once the background's end is known."""
        sc = self._scoring
        for start, end, entry, hedge in pending:  # few items: no need to inline _add()
            if start < bg_end:
                _add(bg_acc, entry, sc.background * hedge, "abstract", ctx, start, end)
            else:
                _add(acc, entry, sc.body * hedge, "abstract", ctx, start, end)

    def _score_keywords(self, keywords: Sequence[str], acc: _Acc) -> None:
        text = " " + ". ".join(k.strip() for k in keywords if k and k.strip()) + " "
        m = _matchable(text)
        ctx: _Ctx = (text, m, 0, {})
        mult = self._scoring.keywords
        for end, entry in self._automaton.iter_long(m):
            if entry[6] & _TOPICAL and m[end + 1] not in entry[0]:
                _add(acc, entry, mult, "keywords", ctx, end - entry[1], end)

    def _score_mesh(self, mesh: Sequence[str], acc: _Acc) -> None:
        descriptors, qualifiers = [], []
        for heading in mesh:
            parts = [p.strip(" *") for p in heading.split("/")]
            descriptors.append((parts[0], heading.strip()))
            qualifiers += [(q, heading.strip()) for q in parts[1:] if q]
        mult = self._scoring.mesh
        self._score_headings(descriptors, self._mesh, "mesh", mult, acc)
        self._score_headings(qualifiers, self._qualifiers, "mesh", mult, acc)

    @staticmethod
    def _score_headings(items: Sequence[tuple[str, str]],
                        table: dict[str, list[tuple[int, float]]], source: str, mult: float,
                        acc: _Acc) -> None:
        """Look up whole headings; evidence is the heading as given (e.g. with qualifier)."""
        for name, shown in items:
            weights = table.get(name.lower())
            if not weights:
                continue
            item = acc.get(name)
            if item is None:
                acc[name] = [mult, mult, tuple(weights), source, None, name, shown, 0]
            else:
                item[1] += mult

    def _decide(self, acc: _Acc, bg_acc: _Acc) -> Classification:
        repeat = self._scoring.repeat
        sums, found = _foreground(acc, repeat)
        if bg_acc:
            # Background mentions add to the score, capped (they never decide on their own),
            # and are not shown as evidence: evidence explains decisions.
            background = [0.0, 0.0, 0.0, 0.0]
            for item in bg_acc.values():
                best = item[0]
                value = best + repeat * (item[1] - best)
                for topic, weight in item[2]:
                    background[topic] += weight * value
            cap = self._scoring.background_cap
            sums = [s + min(b, cap) for s, b in zip(sums, background, strict=True)]
        return _result(sums, found, self._topic_thresholds)


def _result(sums: list[float], found: tuple[list[tuple[float, Evidence]], ...],
            thresholds: tuple[tuple[str, float], ...]) -> Classification:
    """Scores, decided topics and evidence (strongest first) from the topics' sums."""
    exp = math.exp
    topics: list[str] = []
    scores: dict[str, float] = {}
    evidence: dict[str, list[Evidence]] = {}
    for (topic, threshold), x, pairs in zip(thresholds, sums, found, strict=True):
        score = scores[topic] = round(1.0 - exp(-x), 3) if x > 0 else 0.0
        if score >= threshold:
            topics.append(topic)
        if len(pairs) > 1:
            pairs.sort(key=_first, reverse=True)
            evidence[topic] = list(map(_second, pairs))
        else:
            evidence[topic] = [pairs[0][1]] if pairs else []
    result = _new(Classification)  # Classification(...) minus the frozen __init__
    fields = result.__dict__
    fields["topics"], fields["scores"], fields["evidence"] = topics, scores, evidence
    return result


def _add(acc: _Acc, entry: Entry, mult: float, source: str, ctx: tuple[Any, ...], start: int,
         end: int) -> None:
    """Keep, per phrase, the strongest occurrence and the sum of all occurrences."""
    item = acc.get(entry[3])
    if item is None:
        acc[entry[3]] = [mult, mult, entry[4], source, ctx, start, end, entry[5]]
    else:
        item[1] += mult
        if mult > item[0]:
            item[0], item[3], item[5], item[6] = mult, source, start, end


def _foreground(acc: _Acc, repeat: float) -> tuple[list[float],
                                                   tuple[list[tuple[float, Evidence]], ...]]:
    """Each topic's sum, and its evidence keyed by strength, from the foreground phrases."""
    sums = [0.0, 0.0, 0.0, 0.0]
    found: tuple[list[tuple[float, Evidence]], ...] = ([], [], [], [])
    for item in acc.values():
        best = item[0]
        value = best + repeat * (item[1] - best)
        shown = None
        for topic, weight in item[2]:
            sums[topic] += weight * value
            if weight > 0:
                if shown is None:
                    shown = _evidence(item) if item[4] is None else _text_evidence(item)
                found[topic].append((weight * best, shown))
    return sums, found


def _evidence(item: list[Any]) -> Evidence:
    """Display text for a kept occurrence: the phrase as written and its sentence."""
    if item[4] is not None:
        return _text_evidence(item)
    shown = _new(Evidence)  # Evidence(...) minus the frozen-dataclass __init__ cost
    fields = shown.__dict__  # a heading: the matched name and the full heading
    fields["source"], fields["phrase"], fields["sentence"] = item[3], item[5], item[6]
    return shown


def _text_evidence(item: list[Any]) -> Evidence:
    """A phrase found in a text: as written there (widened if asked), and its sentence."""
    text, m, body, sentences = item[4]
    start = item[5]
    if start < body:
        lo, hi = 1, body - 1
    else:
        lo, hi = body, len(text)
    left = m.rfind(". ", lo, start)
    while left >= 0 and text[left + 2].islower():  # "i.p. administered"
        left = m.rfind(". ", lo, left)
    end = item[6] + 1
    # cache key: where the sentence starts; the title's and the abstract's first sentences
    # both have no ". " before them, so they are told apart by their zone's start
    key = left if left >= 0 else lo - 2
    sentence = sentences.get(key)
    if sentence is None:
        right = m.find(". ", end, hi)
        while right >= 0 and text[right + 2 : right + 3].islower():
            right = m.find(". ", right + 2, hi)
        sentence = sentences[key] = text[lo if left < 0 else left + 2 : hi if right < 0 else
                                         right + 1].strip()
    shown = _new(Evidence)  # Evidence(...) minus the frozen-dataclass __init__ cost
    fields = shown.__dict__
    fields["source"] = item[3]
    # A key starts and ends with a letter, digit, '.' or stand-in, never whitespace, so the
    # plain phrase needs no strip(); a widened one may (" mg" with no number before it).
    fields["phrase"] = _widened(text, start, end, item[7]) if item[7] else text[start:end]
    fields["sentence"] = sentence
    return shown


def _widened(text: str, start: int, end: int, display: int) -> str:
    """The phrase with its number ("mg" -> "500 mg") or its whole word ("hepatotox*")."""
    if display == _SHOW_NUMBER:
        start -= 1
        while start and text[start - 1] in _NUMBER_CHARS:
            start -= 1
    else:
        while text[end].isalnum():
            end += 1
    return text[start:end].strip()


_new = object.__new__


def default_lexicon_path() -> Path:
    """The packaged lexicon (wheel), else the checkout's ``data/topics.toml``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data" / "topics.toml", here.parent / "data" / "topics.toml"):
        if candidate.is_file():
            return candidate
    raise LexiconError(
        f"topic lexicon not found: looked for {here / 'data' / 'topics.toml'} "
        f"and {here.parent / 'data' / 'topics.toml'}"
    )


def lexicon_version(raw: bytes) -> str:
    """Code version plus a hash of the lexicon, so editing the lexicon changes the version."""
    return f"{CODE_VERSION}+{hashlib.sha256(raw).hexdigest()[:8]}"


@lru_cache(maxsize=1)
def default_classifier() -> Classifier:
    """The packaged lexicon, loaded once per process."""
    return Classifier.load()
