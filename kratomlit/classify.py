"""Multi-label topic classifier for kratom abstracts: a learned linear model read in one pass.

Why this design (details and cross-validated numbers in docs/classifier.md):

* The knowledge is data: ``data/topic_model.json`` lists every feature (a lexicon phrase, a
  word n-gram or an amount unit) with its learned weight per topic, the intercepts, the
  thresholds, what it was trained on and its cross-validated scores. ``kratomlit train``
  (``kratomlit.train``, scikit-learn) writes it; classifying needs only this module.
* One extractor for training and classifying, so the model sees the same features in both:
  the text becomes ASCII of the same length (Greek letters and dashes get one-character
  stand-ins), goes through one ``bytes.translate`` (lower-cased, punctuation to spaces), and
  one Aho-Corasick pass (pyahocorasick) finds every feature phrase and every cue, including
  overlapping ones ("opioid withdrawal" and "withdrawal"). Keys start with a space, so the
  automaton idles inside words; offsets index the original string directly for evidence.
* Where a phrase stands decides how much it counts (its feature value): title and body 1,
  background (a BACKGROUND section or the sentences before the study is introduced) and
  hedged mentions ("may be hepatotoxic") much less, as the codebook says background recitals
  and speculation do not make a topic. A feature's value is its best occurrence's weight.
* Scoring is a sparse dot product per topic, ``p = 1 / (1 + exp(-(b + sum w * value)))``:
  calibrated probabilities (Platt-scaled inside training), decided at per-topic thresholds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import product
from pathlib import Path
from typing import Any

import ahocorasick

from kratomlit.models import TOPICS, Evidence, built

CODE_VERSION = "2.0"  # bump whenever feature extraction or scoring changes what comes out
MODEL_FORMAT = "kratomlit-topic-model"
SOURCES = ("title", "abstract", "mesh", "keywords", "publication_types")
ZONE_KEYS = ("title", "body", "background", "hedged", "keywords", "mesh", "publication_types")
CUE_KINDS = ("study", "hedge", "background_labels", "section_labels")
EVIDENCE_PER_TOPIC = 3
MIN_EVIDENCE = 0.25  # log-odds a feature must add to a topic to be shown as its evidence
ITEM_CACHE = 50_000  # keywords / MeSH parts / publication types whose hits are kept (<20 MB)

# Cue kinds as bit flags (one key may be several kinds at once).
_CUE, _HEDGE, _BG_LABEL, _LABEL = 1, 2, 4, 8
_CUE_FLAGS = {"study": _CUE, "hedge": _HEDGE, "background_labels": _BG_LABEL,
              "section_labels": _LABEL}
_GREEK = {"mu": ("µ", "μ"), "kappa": ("κ",), "delta": ("δ",), "beta": ("β",),
          "alpha": ("α",), "gamma": ("γ",)}
_DASHES = (" ", "")  # "-" itself reads as a space
# One-character ASCII stand-ins, so offsets in the matched text equal offsets in the original.
_STANDINS = (("µ", "\x01"), ("μ", "\x01"), ("κ", "\x02"), ("δ", "\x03"), ("β", "\x04"),
             ("α", "\x05"), ("γ", "\x06"), ("\u2010", "-"), ("\u2011", "-"), ("\u2013", "-"),
             ("\u2014", "-"), ("\u00a0", " "))
_SHOW_NUMBER, _SHOW_WORD = 1, 2  # how evidence widens a hit: take in the number / the word
_NUMBER_CHARS = frozenset("0123456789.,-–")

# An automaton value. Keys are " word " (whole words: the automaton reads a copy of the text
# with '.' as a space, so a key cannot match inside a longer word and no hit is wasted) or
# " prefix" (any continuation). For a hit ending at ``e``: the phrase runs from
# ``e - entry[0]`` to ``e - entry[1]`` (its last character); then the one whole-word feature
# the key stands for (-1 when it is special), and ``special``: None for a plain key, else
# (whole-word features, prefix features, amount features, cue flags).
Special = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]
Entry = tuple[int, int, int, Special | None]
# Per feature, its best occurrence: (zone weight, source, context, start, end, display); a
# tuple (one allocation, from a free list) replaced on the rare better occurrence
_Hit = tuple[float, str, "_Ctx", int, int, int]
_Acc = dict[int, _Hit]
# text, matched text, abstract start (0 for a keyword/MeSH/publication type), sentences cut
# so far by where they start (for an item: {0: the item as shown})
_Ctx = tuple[str, str, int, dict[int, str]]


def _make_table() -> bytes:
    """Byte map for matching: letters lower-cased, digits, '.' and stand-ins kept, rest space."""
    table = bytearray(b" " * 256)
    for b in range(128):
        char = chr(b)
        if char.isalnum() or char == "." or 0 < b < 0x07:
            table[b] = ord(char.lower())
    return bytes(table)


_TABLE = _make_table()


def matchable(text: str) -> str:
    """What the automaton reads: an ASCII str as long as ``text``, offsets shared."""
    if not text.isascii():
        for char, standin in _STANDINS:
            if char in text:
                text = text.replace(char, standin)
    return text.encode("ascii", "replace").translate(_TABLE).decode("ascii")


class ModelError(Exception):
    """The model file is missing or malformed; the message names the file and problem."""


LexiconError = ModelError  # the name callers used for the hand-written lexicon's errors


# One piece of evidence before it is an ``Evidence``: (phrase, sentence, source)
_Row = tuple[str, str, str]


@dataclass(frozen=True)
class Classification:
    """Topics decided for one record, with every topic's probability and evidence.

    ``Classifier.classify`` leaves ``evidence`` to be built on first access: cutting out
    phrases and sentences was about 30 % of classifying, wasted where only topics and scores
    are read (``eval``'s metrics). Built later or at once, it is the same evidence. What is
    built first is rows (phrase, sentence, source); ``to_dict`` makes its dicts from them
    without the ``Evidence`` objects in between (skipping them saves ~15 % of the
    instructions the evidence and ``to_dict`` take)."""

    topics: list[str]
    scores: dict[str, float]
    evidence: dict[str, list[Evidence]]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy with the evidence built, not the classifier it would come from."""
        return {"topics": self.topics, "scores": self.scores, "evidence": self.evidence}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: topics, scores, evidence as phrase/sentence/source dicts."""
        fields = self.__dict__
        rows = None if "evidence" in fields else _evidence_rows(fields)
        if rows is None:  # given, unpickled or already read: the Evidence objects
            evidence = {t: [e.to_dict() for e in ev] for t, ev in self.evidence.items()}
        else:
            evidence = {}  # a loop, not nested comprehensions: one function frame fewer
            for t, found in rows.items():
                evidence[t] = [{"phrase": phrase, "sentence": sentence, "source": source}
                               for phrase, sentence, source in found] if found else []
        return {"topics": list(self.topics), "scores": dict(self.scores),
                "evidence": evidence}


def _evidence_rows(fields: dict[str, Any]) -> dict[str, list[_Row]] | None:
    """The deferred evidence as rows, built on the first call and kept (None when there is
    nothing to build from: the ``Evidence`` objects are, or will be, in ``fields``)."""
    rows = fields.get("_rows")
    if rows is None:
        build = fields.get("_build")
        if build is None:  # never deferred, or another thread moved on meanwhile
            return fields.get("_rows")
        rows = fields.setdefault("_rows", build())  # one object if threads race
        fields.pop("_build", None)  # the record's text and hits can go now
    return rows


class _Deferred:
    """``Classification.evidence`` when ``classify`` left it to be built: the first read
    builds it and stores it on the instance, which then shadows this (non-data) descriptor."""

    def __get__(self, obj: Classification | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        fields = obj.__dict__
        rows = _evidence_rows(fields)
        if rows is None:  # built meanwhile by another thread, or never deferred
            if "evidence" in fields:
                return fields["evidence"]
            raise AttributeError("evidence")
        evidence = fields.setdefault("evidence", _as_evidence(rows))
        fields.pop("_rows", None)
        return evidence


def _as_evidence(rows: dict[str, list[_Row]]) -> dict[str, list[Evidence]]:
    """Rows as ``Evidence`` (a row listed for two topics becomes two equal objects: rare,
    and cheaper than looking every row up to share one). Made as ``models.built`` makes
    them, inline: the call and its keyword dict were a third of making one, and the
    library's labelling path (``topics.labels_of``) reads every record's evidence."""
    new = object.__new__
    evidence: dict[str, list[Evidence]] = {}
    for topic, found in rows.items():
        listed = evidence[topic] = []
        for phrase, sentence, source in found:
            item = new(Evidence)
            item.__dict__.update(phrase=phrase, sentence=sentence, source=source)
            listed.append(item)
    return evidence


setattr(Classification, "evidence", _Deferred())  # noqa: B010 (after @dataclass saw the field)


# -- features and their automaton keys -------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    """A feature as the model file names it: a phrase (lexicon syntax) or an amount unit."""

    kind: str  # "phrase" or "amount"
    name: str  # "opioid withdrawal", "hepatotox*", "mg/kg"

    @property
    def label(self) -> str:
        return f"{self.name} (after a number)" if self.kind == "amount" else self.name


def _plural(phrase: str) -> str:
    if phrase.endswith("y") and not phrase.endswith(("ay", "ey", "oy")):
        return phrase[:-1] + "ies"
    return phrase + ("es" if phrase.endswith(("s", "x", "ch", "sh")) else "s")


def variants(phrase: str, plural: bool) -> set[str]:
    """Automaton keys for a phrase: dash forms, Greek letters, plural; each led by a space."""
    parts = re.split(r"([- ])", phrase)
    options = [(_DASHES if part == "-" else (" ",)) if i % 2 else (part, *_GREEK.get(part, ()))
               for i, part in enumerate(parts)]
    forms = {"".join(combo) for combo in product(*options)}
    if plural:
        forms |= {_plural(f) for f in forms}
    keys = {" " + " ".join(matchable(f).split()) for f in forms}
    return {k for k in keys if k.strip()}


class _KeyTable:
    """Automaton keys with the features and cues each stands for, merged when keys coincide."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[set[int], set[int], set[int], int]] = {}

    def _slot(self, key: str) -> tuple[set[int], set[int], set[int], int]:
        return self.keys.setdefault(key, (set(), set(), set(), 0))

    def add_feature(self, index: int, feature: Feature) -> None:
        if feature.kind == "amount":
            unit = feature.name.strip().lower()
            for form in {unit, unit.replace("µ", "u")}:
                key = " " + " ".join(matchable(form).replace(".", " ").split()) + " "
                self._slot(key)[2].add(index)
            return
        prefix = feature.name.endswith("*")
        label = feature.name.rstrip("*").strip().lower()
        for key in variants(label, plural=not prefix):
            plain, prefixes, _, _ = self._slot(key if prefix else key + " ")
            (prefixes if prefix else plain).add(index)

    def add_cue(self, phrase: str, flag: int) -> None:
        for key in variants(phrase.strip().lower(), plural=False):
            plain, prefix, amount, flags = self._slot(key + " ")
            self.keys[key + " "] = (plain, prefix, amount, flags | flag)

    def build(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton()
        # A key that can never match ('\x7f' becomes a space in matchable text), added first so
        # that ' ' is the first child of the ' ' node: the automaton looks a node's children up
        # one by one, and a space after a space (punctuation between words) was a miss through
        # every letter a key can start with (the pass over the dev abstracts: ~3 % faster).
        automaton.add_word("  \x7f", _NEVER)
        for key, (plain, prefix, amount, flags) in self.keys.items():
            special: Special | None = None
            single = min(plain) if len(plain) == 1 else -1
            if prefix or amount or flags or single < 0:
                special = (tuple(sorted(plain)), tuple(sorted(prefix)), tuple(sorted(amount)),
                           flags)
                single = -1 if plain or prefix or amount else _CUE_ONLY
            spaced = key.endswith(" ")
            automaton.add_word(key, (len(key) - 2, 1 if spaced else 0, single, special))
        automaton.make_automaton()
        return automaton


_NEVER: Entry = (0, 0, -1, None)
_CUE_ONLY = -2  # an entry's feature slot for a key that is a cue and no feature


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


@dataclass(frozen=True)
class Zones:
    """How much one occurrence counts, by where it stands (the feature value is the best)."""

    title: float = 1.0
    body: float = 1.0
    background: float = 0.0
    hedged: float = 0.25  # a factor on top of the zone
    keywords: float = 1.0
    mesh: float = 1.0
    publication_types: float = 1.0
    hedge_window: int = 80  # a hedge this many characters before, same sentence


class Extractor:
    """Finds feature occurrences in a record and weighs each by its zone: shared by training
    (feature matrix) and classifying (dot product, evidence)."""

    def __init__(self, features: Sequence[Feature], cues: dict[str, list[str]],
                 zones: Zones) -> None:
        self.features = list(features)
        self.zones = zones
        table = _KeyTable()
        for index, feature in enumerate(self.features):
            table.add_feature(index, feature)
        for kind, flag in _CUE_FLAGS.items():
            for phrase in cues.get(kind, ()):
                table.add_cue(phrase, flag)
        self._automaton = table.build()
        self._item_hits: dict[str, tuple[str, str, tuple[tuple[Entry, int, int], ...]]] = {}

    # -- public ---------------------------------------------------------------------------
    def hits(self, title: str | None, abstract: str | None, mesh: Sequence[str] = (),
             keywords: Sequence[str] = (), publication_types: Sequence[str] = ()
             ) -> _Acc:
        """Every matched key with its best occurrence: [weight, source, ctx, start, end,
        display, features]; keys matched only in the background count with its weight."""
        acc: _Acc = {}
        if title or abstract:
            self._scan_text(title or "", abstract or "", acc)
        z = self.zones
        if keywords:
            self._scan_items([(k, k) for k in keywords], "keywords", z.keywords, acc)
        if mesh:
            self._scan_items(_mesh_parts(mesh), "mesh", z.mesh, acc)
        if publication_types:
            self._scan_items([(p, p) for p in publication_types], "publication_types",
                             z.publication_types, acc)
        return acc

    def values(self, title: str | None, abstract: str | None, mesh: Sequence[str] = (),
               keywords: Sequence[str] = (), publication_types: Sequence[str] = ()
               ) -> dict[int, float]:
        """Feature index -> value (the best zone weight among its occurrences)."""
        return feature_values(self.hits(title, abstract, mesh, keywords, publication_types))

    # -- scanning ---------------------------------------------------------------------------
    def _scan_text(self, title: str, abstract: str, acc: _Acc) -> None:
        """One pass over title + abstract: zone and hedge every key as it streams by.

        Hits come in text order (by end). Until the background's end is known, abstract hits
        wait (``_scan_lead``); from there on every hit is in the body (``_scan_body``).
        """
        text = f" {title}\n{abstract} "
        m = matchable(text)
        ctx: _Ctx = (text, m, len(title) + 2, {})
        hits = self._automaton.iter(m.replace(".", " "))
        hedge_end = self._scan_lead(hits, ctx, acc)
        if hedge_end is not None:
            self._scan_body(hits, ctx, acc, hedge_end)

    def _scan_lead(self, hits: Iterator[tuple[int, Entry]], ctx: _Ctx,
                   acc: _Acc) -> int | None:
        """Title and abstract up to the background's end; returns where the last hedge ended,
        or None when the hits ran out first. Only a cue can end the background, so only
        after one is that looked at."""
        text, m, body_start = ctx[0], ctx[1], ctx[2]
        zones = _Zones(body_start)
        pending: list[tuple[int, int, Entry, float]] = []  # abstract hits, zone unknown
        hedge_end, title_w = -1_000_000, self.zones.title
        window, hedged = self.zones.hedge_window, self.zones.hedged
        limit = hedge_end + window  # a hit starting after this is not hedged
        for stop, entry in hits:
            length, back, feature, special = entry
            start, end = stop - length, stop - back
            if special is not None and special[3]:
                if special[3] & _HEDGE:
                    hedge_end, limit = end, end + window
                zones.note(text, m, start, end, special[3])
                if feature == _CUE_ONLY:
                    if zones.end >= 0:
                        self._flush(acc, zones.end, ctx, pending)
                        return hedge_end
                    continue
            hedge = hedged if start <= limit and m.find(". ", hedge_end, start) < 0 else 1.0
            if start < body_start:
                weight = title_w * hedge
                if special is not None:
                    _add(acc, m, entry, weight, "title", ctx, start, end)
                elif (item := acc.get(feature)) is None or weight > item[0]:
                    acc[feature] = (weight, "title", ctx, start, end, 0)
            else:
                pending.append((start, end, entry, hedge))
            if special is not None and zones.end >= 0:
                self._flush(acc, zones.end, ctx, pending)
                return hedge_end
        zones.finish(m)
        self._flush(acc, zones.end, ctx, pending)
        return None

    def _flush(self, acc: _Acc, bg_end: int, ctx: _Ctx,
               pending: list[tuple[int, int, Entry, float]]) -> None:
        """Place the abstract's early hits once the background's end is known."""
        background, body, m = self.zones.background, self.zones.body, ctx[1]
        get = acc.get
        for start, end, entry, hedge in pending:
            weight = (background if start < bg_end else body) * hedge
            if weight <= 0.0:
                continue
            if entry[3] is None:  # a plain key: _add's common case, without the call
                feature = entry[2]
                item = get(feature)
                if item is None or weight > item[0]:
                    acc[feature] = (weight, "abstract", ctx, start, end, 0)
            else:
                _add(acc, m, entry, weight, "abstract", ctx, start, end)

    def _scan_body(self, hits: Iterator[tuple[int, Entry]], ctx: _Ctx, acc: _Acc,
                   hedge_end: int) -> None:
        """The rest of the abstract, all body: the hot loop, plain keys handled inline.

        A feature already at the best weight a body hit can give is skipped before its
        hedge is looked at (about a quarter of all hits are such repeats)."""
        m = ctx[1]
        find = m.find
        window, body = self.zones.hedge_window, self.zones.body
        hedged = body * self.zones.hedged
        top = max(body, hedged)
        limit = hedge_end + window  # a hit starting after this is not hedged
        get = acc.get
        for stop, entry in hits:
            length, _, feature, special = entry
            if feature < 0:  # a cue, prefix, amount or shared key
                if special is not None and special[3] & _HEDGE:
                    hedge_end, limit = stop, stop + window
                if feature == _CUE_ONLY:  # the background is settled: only hedges matter
                    continue
                start = stop - length
                weight = hedged if start <= limit and find(". ", hedge_end, start) < 0 else body
                _add(acc, m, entry, weight, "abstract", ctx, start, stop - entry[1])
                continue
            item = get(feature)
            if item is not None and item[0] >= top:
                continue
            start = stop - length
            weight = hedged if start <= limit and find(". ", hedge_end, start) < 0 else body
            if item is None or weight > item[0]:
                acc[feature] = (weight, "abstract", ctx, start, stop - 1, 0)

    def _scan_items(self, items: Iterable[tuple[str, str]], source: str, weight: float,
                    acc: _Acc) -> None:
        """Keywords, MeSH parts, publication types: each a short text of its own, shown as
        given (a MeSH qualifier as its whole heading). The same items recur across records
        ("Humans", "Journal Article", "pharmacology"), so each one's hits are found once and
        kept: on real records that takes labelling from ~909k to ~805k instructions a record
        once the items are known (53 % of the items in 343 unrelated records were)."""
        seen = self._item_hits
        for raw, shown in items:
            found = seen.get(raw)
            if found is None:
                if len(seen) >= ITEM_CACHE:
                    seen.clear()
                found = seen[raw] = self._item_scan(raw)
            if found[2]:
                text, m, hits = found
                ctx: _Ctx = (text, m, 0, {0: shown.strip()})
                for entry, start, end in hits:
                    _add(acc, m, entry, weight, source, ctx, start, end)

    def _item_scan(self, raw: str) -> tuple[str, str, tuple[tuple[Entry, int, int], ...]]:
        """One item's text, its matchable form and its keys' spans."""
        name = raw.strip(" *")
        text = f" {name} "
        m = matchable(text)
        if not name:
            return text, m, ()
        return text, m, tuple((entry, stop - entry[0], stop - entry[1])
                              for stop, entry in self._automaton.iter(m.replace(".", " ")))


def _mesh_parts(mesh: Sequence[str]) -> list[tuple[str, str]]:
    """'Mitragyna/poisoning*' -> the descriptor and each qualifier, shown as the heading."""
    return [(part, heading) for heading in mesh for part in heading.split("/")]


def _add(acc: _Acc, m: str, entry: Entry, weight: float, source: str, ctx: _Ctx,
         start: int, end: int) -> None:
    """Keep, per feature, its best occurrence; prefix and amount keys are checked here."""
    special = entry[3]
    if special is None:  # the common case, _keep inlined
        feature = entry[2]
        item = acc.get(feature)
        if item is None or weight > item[0]:
            acc[feature] = (weight, source, ctx, start, end, 0)
        return
    plain, prefix, amount, _ = special  # a key is either whole-word or a prefix
    if plain:
        _keep(acc, plain, weight, source, ctx, start, end, 0)
    if prefix:
        _keep(acc, prefix, weight, source, ctx, start, end, _SHOW_WORD)
    if amount and start > 1 and m[start - 2].isdigit():
        _keep(acc, amount, weight, source, ctx, start, end, _SHOW_NUMBER)


def _keep(acc: _Acc, features: tuple[int, ...], weight: float, source: str, ctx: _Ctx,
          start: int, end: int, display: int) -> None:
    """Record an occurrence for each feature that has none yet or only a lighter one."""
    get = acc.get
    for feature in features:
        item = get(feature)
        if item is None or weight > item[0]:
            acc[feature] = (weight, source, ctx, start, end, display)


def feature_values(acc: _Acc) -> dict[int, float]:
    """Feature index -> the best zone weight among its occurrences."""
    return {feature: item[0] for feature, item in acc.items() if item[0] > 0.0}


# -- evidence ---------------------------------------------------------------------------------
def _sentence(ctx: _Ctx, start: int) -> str:
    """The sentence holding offset ``start`` (title, abstract sentence, or the item shown):
    from after the last sentence end before it to the first one after it, within the title
    or the abstract. The two ends are searched from ``start`` (a record shows about eight
    phrases in a few sentences), not listed for the whole text first: listing them cost ~5 %
    more of the evidence's instructions. Sentences are kept by where they start: every phrase
    after the same end is in the same sentence (no end can fall between it and the phrase)."""
    text, m, body, sentences = ctx
    if body == 0:  # keywords / MeSH / publication types: the item as given
        return sentences[0]
    lo, hi = (1, body - 1) if start < body else (body, len(text))
    # _end_before and _end_from, their first search inlined: the call cost more than the
    # search, and an end followed by a lower-case letter is rare
    left = m.rfind(". ", lo, start)
    if left >= 0 and text[left + 2 : left + 3].islower():
        left = _end_before(text, m, lo, left + 1)
    key = left if left >= 0 else lo - 2
    sentence = sentences.get(key)
    if sentence is None:
        right = m.find(". ", start)
        if right < 0:
            right = len(m)
        elif text[right + 2 : right + 3].islower():
            right = _end_from(text, m, right + 2)
        sentence = sentences[key] = text[lo if left < 0 else left + 2 : hi if right > hi - 2
                                         else right + 1].strip()
    return sentence


def _end_before(text: str, m: str, lo: int, start: int) -> int:
    """The last sentence end at or after ``lo`` that closes before ``start`` (-1 if none): a
    '. ' not followed by a lower-case letter ("i.p. administered" goes on)."""
    at = m.rfind(". ", lo, start)
    while at >= 0 and text[at + 2 : at + 3].islower():
        at = m.rfind(". ", lo, at + 1)
    return at


def _end_from(text: str, m: str, start: int) -> int:
    """The first sentence end at or after ``start``, else ``len(m)`` (the text's end)."""
    at = m.find(". ", start)
    while at >= 0 and text[at + 2 : at + 3].islower():
        at = m.find(". ", at + 2)
    return at if at >= 0 else len(m)


def _phrase(item: _Hit) -> str:
    """The phrase as written, with its number ("500 mg") or whole word ("hepatotoxicity")."""
    text = item[2][0]
    start, end, display = item[3], item[4] + 1, item[5]
    if display == _SHOW_NUMBER:
        start -= 1
        while start and text[start - 1] in _NUMBER_CHARS:
            start -= 1
    elif display == _SHOW_WORD:
        while text[end].isalnum():
            end += 1
    return text[start:end].strip()


def _evidence(pairs: list[tuple[float, int]], acc: _Acc,
              made: dict[int, _Row]) -> list[_Row]:
    """The strongest contributions, skipping one that stands inside a phrase already listed
    ("quantitative" within "quantitative analysis")."""
    listed: list[_Row] = []
    spans: list[tuple[_Ctx, int, int]] = []
    for _, index in pairs:
        hit = acc[index]
        ctx, start, end = hit[2], hit[3], hit[4]
        for other, first, last in spans:
            if other is ctx and first <= start and end <= last:
                break
        else:
            item = made.get(index)
            if item is None:
                # _phrase's common case (shown as matched) without the call
                phrase = _phrase(hit) if hit[5] else ctx[0][start : end + 1].strip()
                item = made[index] = (phrase, _sentence(ctx, start), hit[1])
            listed.append(item)
            if len(listed) == EVIDENCE_PER_TOPIC:
                break
            spans.append((ctx, start, end))
    return listed


# -- the model --------------------------------------------------------------------------------
def _fail(path: Path, problem: str) -> ModelError:
    return ModelError(f"{path}: {problem}")


def _number(path: Path, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"{where} must be a number, got {value!r}")
    return float(value)


def _object(path: Path, data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise _fail(path, f"missing or invalid {name!r} (an object)")
    return value


def labelling_content(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model file that decide labels (not its training record or CV scores)."""
    return {k: data.get(k) for k in ("format", "zones", "cues", "intercepts", "thresholds",
                                     "features")}


def model_version(data: dict[str, Any]) -> str:
    """Code version plus a hash of what decides labels: retraining the same model on the same
    data gives the same version; any change of weights, thresholds or cues a new one."""
    canonical = json.dumps(labelling_content(data), sort_keys=True, separators=(",", ":"))
    return f"{CODE_VERSION}+{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


class Classifier:
    """Scores title/abstract/MeSH/keywords/publication types with a learned linear model."""

    def __init__(self, data: dict[str, Any], path: Path) -> None:
        self.path = path
        self.data = data
        self.version = model_version(data)
        if data.get("format") != MODEL_FORMAT:
            raise _fail(path, f"not a {MODEL_FORMAT} file (format {data.get('format')!r})")
        self.zones = self._read_zones(data)
        self.thresholds = self._read_per_topic(data, "thresholds", probability=True)
        self.intercepts = self._read_per_topic(data, "intercepts", probability=False)
        features, self._weights = self._read_features(data)
        cues = self._read_cues(data)
        self.extractor = Extractor(features, cues, self.zones)
        self._intercepts = tuple(self.intercepts[t] for t in TOPICS)
        self._dense, self._reach = _dense_weights(self._weights)
        self._thresholds = tuple(self.thresholds[t] for t in TOPICS)
        self._shown_at_one = [tuple((t, (w, f)) for t, w in pairs if w >= MIN_EVIDENCE)
                              for f, pairs in enumerate(self._weights)]

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | None = None) -> Classifier:
        """Read a model file (default: the packaged ``data/topic_model.json``)."""
        path = Path(path) if path is not None else default_model_path()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _fail(path, f"cannot read model ({exc.strerror or exc})") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(path, f"not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise _fail(path, "not a JSON object")
        return cls(data, path)

    def _read_zones(self, data: dict[str, Any]) -> Zones:
        table = _object(self.path, data, "zones")
        missing = [k for k in (*ZONE_KEYS, "hedge_window") if k not in table]
        if missing:
            raise _fail(self.path, f"zones lacks {', '.join(missing)}")
        values = {k: _number(self.path, f"zones.{k}", table[k]) for k in ZONE_KEYS}
        window = int(_number(self.path, "zones.hedge_window", table["hedge_window"]))
        return Zones(**values, hedge_window=window)

    def _read_per_topic(self, data: dict[str, Any], name: str,
                        probability: bool) -> dict[str, float]:
        table = _object(self.path, data, name)
        out: dict[str, float] = {}
        for topic in TOPICS:
            value = _number(self.path, f"{name}.{topic}", table.get(topic))
            if probability and not 0.0 < value < 1.0:
                raise _fail(self.path, f"{name}.{topic} must be between 0 and 1")
            out[topic] = value
        return out

    def _read_cues(self, data: dict[str, Any]) -> dict[str, list[str]]:
        cues = _object(self.path, data, "cues")
        for kind in CUE_KINDS:
            phrases = cues.get(kind)
            if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                raise _fail(self.path, f"cues.{kind} must be a list of strings")
        return {k: cues[k] for k in CUE_KINDS}

    def _read_features(self, data: dict[str, Any]
                       ) -> tuple[list[Feature], list[tuple[tuple[int, float], ...]]]:
        rows = data.get("features")
        if not isinstance(rows, list):
            raise _fail(self.path, "missing or invalid 'features' (a list)")
        features: list[Feature] = []
        weights: list[tuple[tuple[int, float], ...]] = []
        for n, row in enumerate(rows):
            if not (isinstance(row, dict) and row.get("kind") in ("phrase", "amount")
                    and isinstance(row.get("feature"), str) and row["feature"].strip()
                    and isinstance(row.get("weights"), dict)):
                raise _fail(self.path, f"features[{n}] needs kind (phrase/amount), feature "
                                       "and weights")
            unknown = set(row["weights"]) - set(TOPICS)
            if unknown:
                raise _fail(self.path, f"features[{n}] has an unknown topic {min(unknown)!r}")
            pairs = tuple((TOPICS.index(t), _number(self.path, f"features[{n}].weights.{t}", w))
                          for t, w in row["weights"].items())
            features.append(Feature(row["kind"], row["feature"]))
            weights.append(tuple(p for p in pairs if p[1] != 0.0))
        return features, weights

    # -- classifying -----------------------------------------------------------------------
    def classify(self, title: str | None, abstract: str | None, mesh: Sequence[str] = (),
                 keywords: Sequence[str] = (),
                 publication_types: Sequence[str] = ()) -> Classification:
        """Score one record. Only title/abstract are needed; MeSH etc. add features."""
        acc = self.extractor.hits(title, abstract, mesh, keywords, publication_types)
        sums = self._dot(acc)
        topics: list[str] = []
        scores: dict[str, float] = {}
        exp = math.exp
        for topic, z, threshold in zip(TOPICS, sums, self._thresholds, strict=True):
            score = round(1.0 / (1.0 + exp(-z)), 3) if z > -700 else 0.0
            scores[topic] = score
            if score >= threshold:
                topics.append(topic)
        # evidence is built on first access (_Deferred), from _build
        return built(Classification, topics=topics, scores=scores,
                     _build=partial(self._evidence, acc))

    def _dot(self, acc: _Acc) -> list[float]:
        """Per-topic log-odds, summed in the order features were found (so the floats do not
        depend on the code path). Dense weight rows (0.0 for a topic a feature does not weigh:
        adding 0.0 leaves a sum unchanged) let the four sums be unrolled."""
        dense = self._dense
        s0, s1, s2, s3 = self._intercepts
        for feature, item in acc.items():
            value = item[0]
            w0, w1, w2, w3 = dense[feature]
            if value == 1.0:  # nearly always; w * 1.0 is w exactly
                s0 += w0
                s1 += w1
                s2 += w2
                s3 += w3
            else:
                s0 += w0 * value
                s1 += w1 * value
                s2 += w2 * value
                s3 += w3 * value
        return [s0, s1, s2, s3]

    def _shown(self, acc: _Acc) -> tuple[list[tuple[float, int]], ...]:
        """Per topic, the contributions large enough to be shown, as (contribution, feature).
        At value 1.0 (nearly always) they are the precomputed weights; otherwise a feature
        whose largest weight times its value is under MIN_EVIDENCE is passed over."""
        weights, reach, at_one = self._weights, self._reach, self._shown_at_one
        shown: tuple[list[tuple[float, int]], ...] = ([], [], [], [])
        for feature, item in acc.items():
            value = item[0]
            if value == 1.0:
                for topic, pair in at_one[feature]:
                    shown[topic].append(pair)
            elif reach[feature] * value >= MIN_EVIDENCE:
                for topic, w in weights[feature]:
                    contribution = w * value
                    if contribution >= MIN_EVIDENCE:
                        shown[topic].append((contribution, feature))
        return shown

    def _evidence(self, acc: _Acc) -> dict[str, list[_Row]]:
        """Per topic, its strongest contributions as evidence rows (largest first)."""
        made: dict[int, _Row] = {}  # a feature shown for two topics is built once
        evidence: dict[str, list[_Row]] = {}
        for topic, pairs in zip(TOPICS, self._shown(acc), strict=True):
            if len(pairs) > 1:
                pairs.sort(reverse=True)
            evidence[topic] = _evidence(pairs, acc, made) if pairs else []
        return evidence

    def contributions(self, title: str | None, abstract: str | None,
                      **fields: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        """Per topic, every feature's contribution (weight x value), largest first: for
        explaining a decision in full."""
        values = self.extractor.values(title, abstract, **fields)
        out: dict[str, list[tuple[str, float]]] = {t: [] for t in TOPICS}
        for index, value in values.items():
            for topic, w in self._weights[index]:
                out[TOPICS[topic]].append((self.extractor.features[index].label, w * value))
        for pairs in out.values():
            pairs.sort(key=lambda p: -p[1])
        return out


def _dense_weights(weights: Sequence[tuple[tuple[int, float], ...]]
                   ) -> tuple[list[tuple[float, ...]], list[float]]:
    """Per feature, its weight for every topic (0.0 where it has none) and its largest one."""
    if len(TOPICS) != 4:  # Classifier._dot is unrolled for four topics
        raise ModelError(f"the scorer expects 4 topics, TOPICS has {len(TOPICS)}")
    dense: list[tuple[float, ...]] = []
    for pairs in weights:
        row = [0.0] * len(TOPICS)
        for topic, w in pairs:
            row[topic] = w
        dense.append(tuple(row))
    return dense, [max(row) for row in dense]


def default_model_path() -> Path:
    """The packaged model (wheel), else the checkout's ``data/topic_model.json``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data" / "topic_model.json",
                      here.parent / "data" / "topic_model.json"):
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"topic model not found: looked for {here / 'data' / 'topic_model.json'} "
        f"and {here.parent / 'data' / 'topic_model.json'}"
    )


def default_lexicon_path() -> Path:
    """The candidate phrases and cues training starts from (``data/topics.toml``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data" / "topics.toml", here.parent / "data" / "topics.toml"):
        if candidate.is_file():
            return candidate
    raise ModelError(f"topic lexicon not found: looked for {here / 'data' / 'topics.toml'} "
                     f"and {here.parent / 'data' / 'topics.toml'}")


@lru_cache(maxsize=1)
def default_classifier() -> Classifier:
    """The packaged model, loaded once per process."""
    return Classifier.load()
