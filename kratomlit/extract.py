"""Study design, number of people (n) and doses of one record (issue 13).

Why this design (details and numbers in docs/extract.md):

* Like the topic classifier, the knowledge lives in a readable file, ``data/design.toml``:
  weighted phrases per design, publication types and MeSH headings. One Aho-Corasick pass
  (pyahocorasick) over title + abstract finds every phrase; each design sums its phrases'
  weights times a zone multiplier (title counts double, background sentences a quarter) and
  the highest sum wins. The phrases that decided are the evidence.
* ``n`` comes from scored candidate counts (``kratomlit.sample_size``) and is only given for
  designs that study people (DESIGN.md: null for reviews, animal, in vitro, chemistry, other).
* Doses come from one precompiled regex pass (``kratomlit.doses``).
* Nothing is learned at run time: no scikit-learn, no model file.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
from pathlib import Path
from typing import Any

import ahocorasick

from kratomlit.doses import (
    COUNTED_WORDS,
    SUBSTANCE_PHRASES,
    UNIT_WORDS,
    find_doses,
    kratom_g_per_day,
)
from kratomlit.models import DESIGNS, Evidence, Extraction, built
from kratomlit.sample_size import NUMBER_WORDS, PEOPLE_WORDS, lowered_text, sample_size

HUMAN_DESIGNS = frozenset({"rct", "clinical", "observational", "case", "qualitative"})
CODE_VERSION = "1.3"  # bump whenever code changes what comes out
_MAX_EVIDENCE = 6
_VALUE = itemgetter(0)  # an evidence candidate's contribution
_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NOTHING: frozenset[str] = frozenset()
_STANDINS = (("µ", "u"), ("μ", "u"), ("\u2010", "-"), ("\u2011", "-"), ("\u2013", "-"),
             ("\u2014", "-"), ("\u00a0", " "))
_N = len(DESIGNS)
# DESIGN.md: chemistry is work with no testing in cells, animals or people, so animal or in
# vitro evidence above a bar wins over chemistry; human dosing (rct, clinical) above the bar
# wins over chemistry, animal and in vitro ("human data beats animal data"). (Animal over in
# vitro is left to the weights: species names also stand in ex vivo work, "rat liver
# microsomes".)
# Animal or in vitro work must also reach a third of the chemistry sum: a chemistry paper
# mentions an assay in passing ("in vitro permeability" of isolated alkaloids); an animal
# or in vitro paper does not mention it in passing.
_PRECEDENCE = ((("rct", "clinical"), ("chemistry", "animal", "in_vitro"), 0.0),
               (("animal",), ("chemistry",), 1 / 3), (("in_vitro",), ("chemistry",), 1 / 3))

_PRECEDENCE_AT = tuple((tuple(DESIGNS.index(d) for d in higher),
                        frozenset(DESIGNS.index(d) for d in lower), share)
                       for higher, lower, share in _PRECEDENCE)


class DesignLexiconError(Exception):
    """The design lexicon is missing or malformed; the message names the file and problem."""


def _make_table() -> bytes:
    table = bytearray(b" " * 256)
    for b in range(128):
        char = chr(b)
        if char.isalnum():
            table[b] = ord(char.lower())
    return bytes(table)


_TABLE = _make_table()


def _matchable(text: str) -> str:
    """Lower-case ASCII of the same length as ``text``, punctuation as spaces."""
    if not text.isascii():
        for char, standin in _STANDINS:
            text = text.replace(char, standin)
    return text.encode("ascii", "replace").translate(_TABLE).decode("ascii")


# One weight of a phrase, ready for the scoring loop: an id per (label, slot) (the repeat
# rule counts a label's further occurrences per slot), design index, counts in titles only,
# weight.
_Weight = tuple[int, int, bool, float]
# An automaton value: characters that must not follow (word characters, or none for a
# prefix), key length - 2, phrase label, weights (by slot), is a study cue, anchor slots,
# substance span.
_Entry = tuple[frozenset[str], int, str, tuple[_Weight, ...], bool, tuple[int, ...],
               tuple[int, int] | None]
# A phrase hit: start, end, the phrase's weights.
_Hit = tuple[int, int, tuple[_Weight, ...]]
# Anchor kinds (last entry field): spots the n and dose regexes look at, so that they need not
# scan the whole text (one automaton pass is several times cheaper than one regex pass).
_PEOPLE, _UNIT, _COUNTED, _NUMBER_WORD = 1, 2, 4, 8


def _substance_spans(keys: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Per automaton key holding a substance name: where in the key the name stands."""
    phrases = sorted((" " + p + " " for p in SUBSTANCE_PHRASES), key=len, reverse=True)
    spans = {}
    for key in keys:
        padded = key + " "
        for phrase in phrases:
            at = padded.find(phrase)
            if at >= 0:
                spans[key] = (at, at + len(phrase) - 2)
                break
    return spans


def _weights(label: str, weights: dict[int, float],
             ids: dict[tuple[str, int], int]) -> tuple[_Weight, ...]:
    """A phrase's weights in slot order (sums add up in that order), each with its (label,
    slot) id, so the scoring loop builds and hashes no tuple per hit."""
    return tuple((ids.setdefault((label, slot), len(ids)), slot % _N, slot >= _N, weight)
                 for slot, weight in sorted(weights.items()))


def _slots(kinds: int) -> tuple[int, ...]:
    """Anchor kind bits as list slots: people 0, unit 1, counted 2, number word 3."""
    return tuple(slot for slot, kind in enumerate((_PEOPLE, _UNIT, _COUNTED, _NUMBER_WORD))
                 if kinds & kind)


def _anchor_keys() -> dict[str, int]:
    """Automaton keys for people nouns, "N"/"total", unit words and counted units."""
    kinds: dict[str, int] = {}
    for words, kind in ((PEOPLE_WORDS + ("n", "total"), _PEOPLE), (UNIT_WORDS, _UNIT),
                        (COUNTED_WORDS, _COUNTED), (NUMBER_WORDS, _NUMBER_WORD)):
        for word in words:
            for key in _keys(word) if kind == _PEOPLE else {" " + word.lower()}:
                kinds[key] = kinds.get(key, 0) | kind
            if kind == _UNIT:  # "5mg": the unit right after a digit
                for digit in "0123456789":
                    kinds[digit + word] = kinds.get(digit + word, 0) | kind
    for phrase in SUBSTANCE_PHRASES:  # found for their spans (_substance_spans), no kind
        kinds.setdefault(" " + phrase, 0)
    return kinds


@dataclass(frozen=True)
class _Scoring:
    title: float
    body: float
    background: float
    repeat: float
    floor: float
    precedence: float


def _keys(phrase: str) -> set[str]:
    """Automaton keys for a phrase (led by a space); plural added for plain words."""
    label = _matchable(phrase.rstrip("*").strip()).strip()
    label = re.sub(r"\s+", " ", label)
    forms = {label}
    if not phrase.endswith("*") and not label.endswith("s"):
        forms.add(label + "s")
    return {" " + f for f in forms}


class Extractor:
    """Decides design, n and doses from a record's text and headings."""

    def __init__(self, data: dict[str, Any], path: Path, version: str) -> None:
        self.path = path
        self.version = version
        self._scoring = self._read_scoring(data)
        self._pubtypes = self._read_headings(data, "publication_types")
        self._mesh = self._read_headings(data, "mesh")
        self._automaton = self._build(data)

    @classmethod
    def load(cls, path: Path | None = None) -> Extractor:
        """Read a design lexicon (default: the packaged ``data/design.toml``)."""
        path = Path(path) if path is not None else default_lexicon_path()
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8"))
        except OSError as exc:
            raise DesignLexiconError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DesignLexiconError(f"{path}: not valid TOML ({exc})") from exc
        return cls(data, path, version_of(raw))

    # -- loading ---------------------------------------------------------------------------
    def _fail(self, problem: str) -> DesignLexiconError:
        return DesignLexiconError(f"{self.path}: {problem}")

    def _number(self, where: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(f"{where} must be a number, got {value!r}")
        return float(value)

    def _read_scoring(self, data: dict[str, Any]) -> _Scoring:
        table = data.get("scoring")
        if not isinstance(table, dict):
            raise self._fail("missing table [scoring]")
        names = ("title", "body", "background", "repeat", "floor", "precedence")
        missing = [k for k in names if k not in table]
        if missing:
            raise self._fail(f"[scoring] lacks {', '.join(missing)}")
        return _Scoring(**{k: self._number(f"scoring.{k}", table[k]) for k in names})

    def _read_headings(self, data: dict[str, Any],
                       name: str) -> dict[str, tuple[tuple[int, float], ...]]:
        table = data.get(name, {})
        out = {}
        for heading, weights in table.items():
            if not isinstance(weights, dict) or not set(weights) <= set(DESIGNS):
                raise self._fail(f"{name}.{heading!r} must map designs to weights")
            out[heading.lower()] = tuple((DESIGNS.index(d), self._number(f"{name}.{heading}", w))
                                         for d, w in weights.items())
        return out

    def _build(self, data: dict[str, Any]) -> ahocorasick.Automaton:
        keys: dict[str, tuple[str, dict[int, float], bool, bool]] = {}
        cues = data.get("cues", {}).get("study", [])
        if not isinstance(cues, list) or not all(isinstance(c, str) for c in cues):
            raise self._fail("cues.study must be a list of strings")
        for cue in cues:
            for key in {" " + _matchable(cue).strip()}:
                label, weights, _, prefix = keys.get(key, (cue, {}, True, False))
                keys[key] = (label, weights, True, prefix)
        for index, design in enumerate(DESIGNS):
            terms = data.get(design, {}).get("terms", {})
            if not isinstance(terms, dict):
                raise self._fail(f"[{design}.terms] must be a table")
            for phrase, weight in terms.items():
                w = self._number(f"{design}.terms.{phrase!r}", weight)
                self._add(keys, phrase, index, w)
            title_terms = data.get(design, {}).get("title", {})
            for phrase, weight in title_terms.items():
                w = self._number(f"{design}.title.{phrase!r}", weight)
                self._add(keys, phrase, index + len(DESIGNS), w)
        anchors = _anchor_keys()
        substance_spans = _substance_spans(keys.keys() | anchors.keys())
        for key in keys:  # a phrase holding an anchor word ("kratom users", "mg kg") is one
            for word in key.split():
                anchors[key] = anchors.get(key, 0) | anchors.get(" " + word, 0)
        cues_at_start = tuple(k + " " for k, v in keys.items() if v[2])
        ids: dict[tuple[str, int], int] = {}
        automaton = ahocorasick.Automaton()
        for key in keys.keys() | anchors.keys():
            label, weights, cue, prefix = keys.get(key, (key.strip(), {}, False, False))
            # a longer phrase that starts with a cue ("we present") is a cue too: the
            # automaton reports only the longest match
            cue = cue or key.startswith(cues_at_start)
            entry: _Entry = (_NOTHING if prefix else _WORD, len(key) - 2, label,
                             _weights(label, weights, ids), cue, _slots(anchors.get(key, 0)),
                             substance_spans.get(key))
            automaton.add_word(key, entry)
        automaton.make_automaton()
        return automaton

    @staticmethod
    def _add(keys: dict[str, tuple[str, dict[int, float], bool, bool]], phrase: str,
             index: int, weight: float) -> None:
        """One phrase's keys; index >= len(DESIGNS) marks a weight that counts in titles only."""
        for key in _keys(phrase):
            label, weights, cue, prefix = keys.get(key, (phrase.rstrip("*"), {}, False, False))
            weights[index] = weight
            keys[key] = (label, weights, cue, prefix or phrase.endswith("*"))

    # -- extracting ------------------------------------------------------------------------
    def extract(self, title: str | None, abstract: str | None, mesh: Sequence[str] = (),
                publication_types: Sequence[str] = (),
                keywords: Sequence[str] = ()) -> Extraction:
        """Design (with confidence and evidence), n, doses and kratom grams per day."""
        title, abstract = title or "", abstract or ""
        text = f" {title}\n{abstract} "
        body = len(title) + 2
        hits, bg_end, anchors, substances = self._hits(text, body)
        sums = [0.0] * len(DESIGNS)
        found: list[tuple[float, int, Any]] = []
        self._score_text(text, body, bg_end, hits, sums, found)
        if publication_types:  # most callers give no headings: skip the calls
            self._score_headings(publication_types, self._pubtypes, "publication_types",
                                 sums, found)
        if mesh:
            self._score_headings([h.split("/")[0].strip(" *") for h in mesh], self._mesh,
                                 "mesh", sums, found)
        design, confidence = self._decide(sums)
        # shared by the n and dose patterns; neither reads it when no anchor is found
        low = (lowered_text(text) if anchors[1] or anchors[2] or
               (anchors[0] and design in HUMAN_DESIGNS) else text)
        n = self._n(design, text, body, bg_end, anchors[0], anchors[3], low)
        doses = find_doses(text, anchors[1], anchors[2], substances, lowered=low)
        # design_evidence is built on first read (models._DeferredEvidence), from _build
        return built(Extraction, design=design, design_confidence=confidence, n=n,
                     doses=doses, kratom_g_per_day=kratom_g_per_day(doses),
                     _build=partial(_evidence, text, body, found, DESIGNS.index(design)))

    def _hits(self, text: str, body: int) -> tuple[list[_Hit], int, list[list[int]],
                                                   list[tuple[int, int]]]:
        """Every weighted phrase hit (start, end, weights), where the abstract's background
        ends, the anchors for n and doses by kind, and the (start, end) of substance names."""
        m = _matchable(text)
        hits = []
        bg_end = -1
        anchors: list[list[int]] = [[], [], [], []]  # by slot: _SLOT_OF[kind]
        substances: list[tuple[int, int]] = []
        for end, entry in self._automaton.iter_long(m):
            stop, length, _, weights, cue, slots, span = entry  # one unpack, not 7 lookups
            if m[end + 1] in stop:
                continue
            start = end - length
            if weights:  # a cue without weights only ends the background
                hits.append((start, end, weights))
            if cue and bg_end < 0 and start >= body:
                bg_end = max(text.rfind(". ", body, start) + 2, body)
            if slots:
                for slot in slots:
                    anchors[slot].append(start)
            if span:
                substances.append((start + span[0], start + span[1]))
        if bg_end < 0:
            first = text.find(". ", body)
            bg_end = body if first < 0 or not text[first + 2:].strip() else first + 2
        return hits, bg_end, anchors, substances

    def _score_text(self, text: str, body: int, bg_end: int,
                    hits: list[_Hit], sums: list[float],
                    found: list[tuple[float, int, Any]]) -> None:
        """Add each hit's weights to its designs; remember where shown phrases stood.

        ``found`` gets (value, design, (start, end, source)) for title and body hits; only
        the winning design's few are turned into Evidence (sentences are cut lazily).
        """
        sc = self._scoring
        seen: set[int] = set()
        title_mult, body_mult, bg_mult, repeat = sc.title, sc.body, sc.background, sc.repeat
        for start, end, weights in hits:
            if start < body:
                mult, source = title_mult, "title"
            elif start < bg_end:
                mult, source = bg_mult, ""
            else:
                mult, source = body_mult, "abstract"
            for key, index, title_only, weight in weights:
                if title_only and start >= body:
                    continue
                if key in seen:
                    sums[index] += weight * mult * repeat
                    continue
                seen.add(key)
                sums[index] += weight * mult
                if weight > 0 and source:
                    found.append((weight * mult, index, (start, end, source)))

    @staticmethod
    def _score_headings(headings: Sequence[str], table: dict[str, tuple[tuple[int, float], ...]],
                        source: str, sums: list[float],
                        found: list[tuple[float, int, Any]]) -> None:
        for heading in headings:
            name = heading.strip()
            for index, weight in table.get(name.lower(), ()):
                sums[index] += weight
                found.append((weight, index, Evidence(name, name, source)))

    def _decide(self, sums: list[float]) -> tuple[str, float]:
        """The highest sum wins; confidence grows with its size and its lead over the next."""
        sums, winner = _precedence(sums, self._scoring.precedence)
        best = sums[winner]
        if best < self._scoring.floor:
            return "review", 0.3  # no study of any kind described: commentary or overview
        second = max(sorted(sums)[-2], 0.0)  # the winner is a largest sum: the next one
        strength = 1.0 - math.exp(-best / 4.0)
        margin = (best - second) / best
        return DESIGNS[winner], round(min(0.99, strength * (0.5 + 0.5 * margin)), 2)

    @staticmethod
    def _n(design: str, text: str, body: int, bg_end: int, anchors: list[int],
           words: list[int], low: str) -> int | None:
        if design not in HUMAN_DESIGNS:
            return None
        count = sample_size(text, body, bg_end, anchors, words, lowered=low)
        if design == "case":  # one patient unless the abstract counts its cases
            return count.value if (count is not None and count.value <= 20 and
                                    not _part_of(text, count.start)) else 1
        return count.value if count is not None else None


def _part_of(text: str, start: int) -> bool:
    """ "mother of two children": a count after "of" that is not "series of 2 patients"."""
    before = text[max(0, start - 30) : start].lower().split()
    return bool(before) and before[-1] == "of" and before[-2:-1] not in (["series"], ["total"])


def _precedence(sums: list[float], bar: float) -> tuple[list[float], int]:
    """Lift a design that DESIGN.md ranks first (human dosing over the rest, animal or in
    vitro over chemistry) above the winner it outranks, when its own sum reaches ``bar``;
    return the sums and the winner's index (the first on a tie)."""
    best = sums.index(max(sums))  # the first on a tie
    for higher, lower, share in _PRECEDENCE_AT:
        if best not in lower:
            continue
        for i in higher:
            if sums[i] >= max(bar, share * sums[best]):
                sums = list(sums)
                sums[i] = sums[best] + 0.01
                return sums, i
    return sums, best


def _evidence(text: str, body: int, found: list[tuple[float, int, Any]],
              index: int) -> list[Evidence]:
    """The design's strongest few phrases (text order on a tie) as Evidence; a sentence
    that holds several of them (often the title) is cut once."""
    mine = [f for f in found if f[1] == index]
    mine.sort(key=_VALUE, reverse=True)  # stable, also reversed: ties keep text order
    cut: dict[tuple[int, int], str] = {}
    out = []
    for _, _, where in mine[:_MAX_EVIDENCE]:
        if where.__class__ is Evidence:  # a heading's, ready made
            out.append(where)
            continue
        start, end, source = where
        span = _sentence_span(text, start, body)
        sentence = cut.get(span)
        if sentence is None:
            sentence = cut[span] = text[span[0] : span[1]].strip()
        out.append(built(Evidence, phrase=text[start : end + 1], sentence=sentence,
                         source=source))
    return out


def _sentence_span(text: str, start: int, body: int) -> tuple[int, int]:
    """Where the sentence around ``start`` stands (the title when it is in the title)."""
    lo, hi = (1, body - 1) if start < body else (body, len(text))
    left = text.rfind(". ", lo, start)
    right = text.find(". ", start, hi)
    return lo if left < 0 else left + 2, hi if right < 0 else right + 1


def default_lexicon_path() -> Path:
    """The packaged lexicon (wheel), else the checkout's ``data/design.toml``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data" / "design.toml", here.parent / "data" / "design.toml"):
        if candidate.is_file():
            return candidate
    raise DesignLexiconError(f"design lexicon not found: looked for {here / 'data'} "
                             f"and {here.parent / 'data'}")


def version_of(raw: bytes) -> str:
    """Code version plus a hash of the lexicon, so editing the lexicon changes the version."""
    return f"{CODE_VERSION}+{hashlib.sha256(raw).hexdigest()[:8]}"


@lru_cache(maxsize=1)
def default_extractor() -> Extractor:
    """The packaged lexicon, loaded once per process."""
    return Extractor.load()


def extract(title: str | None, abstract: str | None, mesh: Sequence[str] = (),
            publication_types: Sequence[str] = (), keywords: Sequence[str] = ()) -> Extraction:
    """Design, n and doses of one record with the packaged lexicon."""
    return default_extractor().extract(title, abstract, mesh, publication_types, keywords)


def extractor_version() -> str:
    """The packaged lexicon's version (code version plus a hash of data/design.toml)."""
    return default_extractor().version
