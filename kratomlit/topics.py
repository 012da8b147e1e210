"""Topic labelling where it meets the library and files: what ``classify`` and ``eval`` run.

The classifier itself (``classify.py``) and its metrics (``evaluate.py``) stay pure; this
module stores labels with the classifier version and turns file problems into
``InputError`` messages that name the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kratomlit.classify import Classification, Classifier
from kratomlit.errors import ExportError, InputError, UsageError
from kratomlit.evaluate import EvalReport, InputLineError, classify_file, evaluate, read_items
from kratomlit.models import DESIGNS, TOPICS, Extraction, Labels, Record, built
from kratomlit.store import Library

if TYPE_CHECKING:
    from kratomlit.extract import Extractor

SAVE_EVERY = 2000  # labels per transaction: bounded memory, few commits


@dataclass
class LabelSummary:
    """What one ``classify`` run did (library or file)."""

    version: str
    labelled: int = 0
    library_records: int | None = None  # library runs only
    topics: dict[str, int] = field(default_factory=dict)  # library runs: labels made now
    input: str | None = None  # file runs only
    output: str | None = None
    extractor_version: str | None = None
    extracted: int = 0  # records given a study design, n and doses now
    designs: dict[str, int] = field(default_factory=dict)  # library runs: designs made now


def load_extractor(problems: list[str]) -> Extractor | None:
    """The shipped design/n/dose extractor, or None with the reason noted."""
    from kratomlit.extract import DesignLexiconError, default_extractor

    try:
        return default_extractor()
    except DesignLexiconError as exc:
        problems.append(f"New records got no study design: the design lexicon is broken "
                        f"({exc}).")
        return None


def extract_record(extractor: Extractor, rec: Record,
                   mesh: Sequence[str] | None = None) -> Extraction:
    """Design, n and doses for a library record (``mesh``: its headings, if made already)."""
    return extractor.extract(rec.title, rec.abstract,
                             mesh=rec.mesh_headings if mesh is None else mesh,
                             publication_types=rec.publication_types, keywords=rec.keywords)


def extract_library(extractor: Extractor, library: Library, summary: LabelSummary,
                    redo_all: bool = False) -> None:
    """Extract design, n and doses for records without a current extraction."""
    counts: Counter[str] = Counter()
    pending: list[tuple[int, Extraction]] = []
    for rec in library.extractions.to_extract(extractor.version, redo_all=redo_all):
        found = extract_record(extractor, rec)
        counts[found.design] += 1
        pending.append((rec.pmid, found))
        if len(pending) >= SAVE_EVERY:
            summary.extracted += library.extractions.save(extractor.version, pending)
            pending = []
    summary.extracted += library.extractions.save(extractor.version, pending)
    summary.extractor_version = extractor.version
    summary.designs = {d: counts[d] for d in DESIGNS if counts[d]}


def label_library(library: Library, problems: list[str], redo_all: bool = False,
                  classifier: Classifier | None = None) -> LabelSummary:
    """Topics, then design/n/doses, for every record lacking current ones (what search,
    refresh and classify run); a part that cannot load is noted in ``problems``."""
    classifier = classifier or load_classifier(problems)
    summary = classify_library(classifier, library, redo_all) if classifier else \
        LabelSummary("", library_records=library.records.count())
    extractor = load_extractor(problems)
    if extractor is not None:
        extract_library(extractor, library, summary, redo_all)
    return summary


def label_records(library: Library, records: Sequence[Record], classifier: Classifier,
                  extractor: Extractor | None) -> int:
    """Topics, then design/n/doses, for ``records`` just stored: a search labels each
    batch from the records in hand, without reading it back or scanning the library for
    what lacks labels (a scan costs time in proportion to the library, per batch)."""
    headings = [r.mesh_headings for r in records]  # built once for both (~2 % of labelling)
    labels = [(r.pmid, labels_of(classify_record(classifier, r, mesh), classifier.version))
              for r, mesh in zip(records, headings, strict=True)]
    library.labels.save(labels)
    if extractor is not None:
        library.extractions.save(extractor.version,
                                 [(r.pmid, extract_record(extractor, r, mesh))
                                  for r, mesh in zip(records, headings, strict=True)])
    return len(labels)


def load_classifier(problems: list[str]) -> Classifier | None:
    """The shipped classifier, or None with the reason noted in ``problems``: records
    fetched by search/refresh are stored even when labelling cannot run."""
    from kratomlit.classify import ModelError, default_classifier

    try:
        return default_classifier()
    except ModelError as exc:
        problems.append(f"New records were not labelled: the topic model is broken ({exc}).")
        return None


def labels_of(result: Classification, version: str) -> Labels:
    """The labels stored for one result (``built``: a frozen dataclass's ``__init__`` sets
    each field through ``object.__setattr__``; search, refresh and classify make one per
    record)."""
    return built(Labels, version=version, topics=list(result.topics),
                 scores=dict(result.scores), evidence=dict(result.evidence))


def classify_record(classifier: Classifier, rec: Record,
                    mesh: Sequence[str] | None = None) -> Classification:
    """Topics for a library record, from its text and PubMed's indexing (``mesh``: its
    headings, if made already)."""
    return classifier.classify(rec.title, rec.abstract,
                               mesh=rec.mesh_headings if mesh is None else mesh,
                               keywords=rec.keywords,
                               publication_types=rec.publication_types)


def classify_library(classifier: Classifier, library: Library,
                     redo_all: bool = False) -> LabelSummary:
    """Label records that are unlabelled or labelled by another classifier version."""
    counts: Counter[str] = Counter()
    pending: list[tuple[int, Labels]] = []
    done = 0
    for rec in library.labels.to_label(classifier.version, redo_all=redo_all):
        result = classify_record(classifier, rec)
        counts.update(result.topics or ["(none)"])
        pending.append((rec.pmid, labels_of(result, classifier.version)))
        if len(pending) >= SAVE_EVERY:
            done += library.labels.save(pending)
            pending = []
    done += library.labels.save(pending)
    return LabelSummary(classifier.version, done, library.records.count(),
                        {t: counts[t] for t in (*TOPICS, "(none)")})


def label_file(classifier: Classifier, in_path: Path, out_path: Path) -> LabelSummary:
    """Classify a JSONL file into another; no output file unless every line is good."""
    if not out_path.parent.is_dir():
        raise ExportError(f"Cannot write {out_path}: folder {out_path.parent} does not exist.")
    if not in_path.is_file():
        raise InputError(f"Cannot read {in_path}: no such file.")
    problems: list[str] = []
    extractor = load_extractor(problems)
    if extractor is None:
        raise UsageError(" ".join(problems))
    try:
        n = classify_file(classifier, in_path, out_path, extractor)
    except InputLineError as exc:
        raise InputError(f"{in_path}, {exc}. Nothing was written; fix the line and "
                         "run again.") from None
    except OSError as exc:
        raise ExportError(f"Cannot read {in_path} or write {out_path}: "
                          f"{exc.strerror or exc}.") from None
    return LabelSummary(classifier.version, n, input=str(in_path), output=str(out_path),
                        extractor_version=extractor.version, extracted=n)


def evaluate_file(classifier: Classifier, gold_path: Path) -> EvalReport:
    """Per-topic precision, recall and F1 of the classifier on a labelled JSONL file."""
    try:
        items = read_items(gold_path, require_labels=True)
    except InputLineError as exc:
        raise InputError(f"{gold_path}, {exc}.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {gold_path}: {exc.strerror or exc}.") from None
    if not items:
        raise InputError(f"{gold_path} holds no labelled abstracts.")
    report = evaluate(classifier, items)
    if all("design" in item for item in items):  # gold design and n: score those too
        from kratomlit.extract_eval import evaluate as evaluate_designs

        report.extraction = evaluate_designs(items)
    return report
