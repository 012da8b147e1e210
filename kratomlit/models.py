"""The record model every module shares: what a PubMed record is, what the library adds to
it, and the export schema. One definition of each rule (topics, retraction, first author,
PubMed URL) lives here.

Nested parts (authors, MeSH headings, sections, corrections) are TypedDicts: typed for the
checker, yet plain JSON-ready dicts at run time, so a record goes to and from the
library's JSON column without a conversion pass (``dataclasses.asdict`` deep-copied every
record and cost two thirds of storing it). This module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeVar

TOPICS: tuple[str, ...] = ("mechanism", "withdrawal", "safety", "dosing")
# study designs, as ../shared/topics/DESIGN.md defines them (extract.py decides one per record)
DESIGNS: tuple[str, ...] = ("rct", "clinical", "observational", "case", "qualitative",
                            "systematic_review", "review", "animal", "in_vitro", "chemistry",
                            "other")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
RETRACTION_TYPES = ("RetractionIn", "RetractionOf", "ErratumIn", "ErratumFor",
                    "ExpressionOfConcernIn", "ExpressionOfConcernFor")
SEP = "; "  # how list cells are joined in CSV, TSV and XLSX
_URL_HEAD, _URL_TAIL = PUBMED_URL.split("{pmid}")


class Author(TypedDict):
    last: str
    fore: str
    initials: str
    suffix: str
    collective: str  # a group author's name; the other name parts are then empty
    affiliations: list[str]
    valid: bool  # PubMed's ValidYN: False marks a name listed in error


class Qualifier(TypedDict):
    name: str
    ui: str
    major: bool


class MeshHeading(TypedDict):
    descriptor: str
    ui: str
    major: bool  # the descriptor or one of its qualifiers is a major topic
    qualifiers: list[Qualifier]


class AbstractSection(TypedDict):
    label: str  # e.g. "METHODS"; empty for an unstructured abstract
    category: str  # NLM's category (BACKGROUND, METHODS, ...), or empty
    text: str


class Correction(TypedDict):
    type: str  # one of RETRACTION_TYPES
    source: str
    pmid: str


def author_name(author: Author) -> str:
    """``Last FM`` as PubMed cites it, or the collective name (empty parts left out)."""
    if author["collective"]:
        return author["collective"]
    last, initials, suffix = author["last"], author["initials"], author["suffix"]
    name = f"{last} {initials}" if last and initials else last or initials
    return f"{name} {suffix}" if name and suffix else name or suffix


def mesh_heading(m: MeshHeading) -> str:
    """``Descriptor/Qualifier`` as PubMed writes it; ``*`` marks a major topic."""
    quals = m["qualifiers"]
    if not quals:  # the usual case, one string and no joins
        return m["descriptor"] + "*" if m["major"] else m["descriptor"]
    if len(quals) == 1:  # the next most usual: no join, no scan (half the time)
        q = quals[0]
        if q["major"]:
            return m["descriptor"] + "/" + q["name"] + "*"
        return (m["descriptor"] + "*/" if m["major"] else m["descriptor"] + "/") + q["name"]
    text = "".join([f"/{q['name']}*" if q["major"] else f"/{q['name']}" for q in quals])
    star = "*" if m["major"] and not any([q["major"] for q in quals]) else ""
    return f"{m['descriptor']}{star}{text}"


def correction_text(c: Correction) -> str:
    return f"{c['type']}: {c['source']}" + (f" (PMID {c['pmid']})" if c["pmid"] else "")


@dataclass
class Record:
    """One PubMed record, normalised for storage, classification and export."""

    pmid: int
    kind: str = "article"  # "article" or "book"
    title: str = ""
    abstract: str = ""
    abstract_sections: list[AbstractSection] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    journal: str = ""
    journal_iso: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    pub_year: int | None = None
    pub_date: str = ""
    doi: str = ""
    pmcid: str = ""
    mesh: list[MeshHeading] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    publication_types: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    date_revised: str = ""
    raw_xml: str = ""

    @property
    def retracted(self) -> bool:
        """True when PubMed links a retraction notice or types the record as retracted."""
        for c in self.corrections:  # a loop: most records have none, and no generator
            if c["type"] == "RetractionIn":
                return True
        return "Retracted Publication" in self.publication_types

    @property
    def author_names(self) -> list[str]:
        """Cited names of the valid authors (ValidYN="N" names were listed in error)."""
        return [author_name(a) for a in self.authors if a["valid"]]

    @property
    def first_author(self) -> str:
        names = self.author_names
        return names[0] if names else ""

    @property
    def affiliations(self) -> list[str]:
        """Distinct affiliations of the valid authors, in order of first mention."""
        return list(dict.fromkeys([x for a in self.authors if a["valid"]
                                   for x in a["affiliations"]]))

    @property
    def url(self) -> str:
        return f"{_URL_HEAD}{self.pmid}{_URL_TAIL}"  # PUBMED_URL, without format()

    @property
    def mesh_headings(self) -> list[str]:
        """Headings as PubMed writes them (``Descriptor/Qualifier``, ``*`` major)."""
        return [mesh_heading(m) for m in self.mesh]

    def to_dict(self, raw: bool = False) -> dict[str, Any]:
        """The fields as a dict (shallow: nested lists/dicts are shared, already JSON-ready;
        ``dataclasses.asdict`` deep-copies and cost two thirds of storing a record)."""
        data = dict(vars(self))
        if not raw:
            data.pop("raw_xml")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """The inverse of ``to_dict`` (the library's JSON column); unknown keys are dropped
        so a library written by a later kratomlit still reads. ``data`` may become the
        record's own ``__dict__``: a dict with exactly the stored fields, in field order
        (as ``to_dict`` writes them), needs no ``__init__``, which was most of the cost."""
        if tuple(data) == _STORED_ORDER:  # the usual case: the dict is the record
            data["raw_xml"] = ""
            made = object.__new__(cls)
            made.__dict__ = data
            return made
        if data.keys() <= _RECORD_FIELDS:
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in _RECORD_FIELDS})


_RECORD_FIELDS = frozenset(Record.__dataclass_fields__)
# the fields as the library stores them (``to_dict``: every field but raw_xml, in order)
_STORED_ORDER = tuple(f for f in Record.__dataclass_fields__ if f != "raw_xml")


@dataclass
class ParsedBatch:
    """One EFetch answer: the records it held and the PMIDs PubMed deleted."""

    records: list[Record]
    deleted: list[int]


_T = TypeVar("_T")


def built(cls: type[_T], **fields: Any) -> _T:
    """``cls(**fields)`` for a frozen dataclass, without its ``__init__``, which sets each
    field through ``object.__setattr__``: a third of making one on the classifier's and
    extractor's hot paths. No defaults, no checks: the caller gives every field."""
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


@dataclass(frozen=True)
class Evidence:
    """One feature (phrase or heading) that pushed a topic up, and where it stands."""

    phrase: str
    sentence: str
    source: str  # title, abstract, mesh, keywords or publication_types

    def to_dict(self) -> dict[str, str]:
        return {"phrase": self.phrase, "sentence": self.sentence, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(str(data.get("phrase", "")), str(data.get("sentence", "")),
                   str(data.get("source", "")))


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


@dataclass(frozen=True)
class Extraction:
    """What a record is (design), how many people it analysed (n) and what amounts it names.

    ``Extractor.extract`` leaves ``design_evidence`` to be built on first read, as
    ``Classifier.classify`` does with its evidence: cutting out phrases and sentences was
    about a tenth of extracting, wasted where only design and n are read (``eval``). Built
    later or at once, it is the same evidence."""

    design: str
    design_confidence: float
    design_evidence: list[Evidence] = field(default_factory=list)
    n: int | None = None
    doses: list[Dose] = field(default_factory=list)
    kratom_g_per_day: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: evidence and doses as dicts, kratom_g_per_day as a list or None."""
        return {
            "design": self.design,
            "design_confidence": self.design_confidence,
            "design_evidence": [e.to_dict() for e in self.design_evidence],
            "n": self.n,
            "doses": [d.to_dict() for d in self.doses],
            "kratom_g_per_day": list(self.kratom_g_per_day) if self.kratom_g_per_day else None,
        }

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy with the evidence built, not the text it would be cut from."""
        return {name: getattr(self, name) for name in _EXTRACTION_FIELDS}

    @property
    def doses_text(self) -> str:
        """The doses as flat tables show them (CSV/TSV/XLSX): their texts, "; "-joined."""
        return "; ".join(dict.fromkeys(d.text for d in self.doses))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Extraction:
        """Inverse of ``to_dict`` (e.g. reading a stored record back)."""
        g = data.get("kratom_g_per_day")
        return cls(
            design=str(data["design"]),
            design_confidence=float(data.get("design_confidence", 0.0)),
            design_evidence=[Evidence(str(e["phrase"]), str(e["sentence"]), str(e["source"]))
                             for e in data.get("design_evidence") or []],
            n=None if data.get("n") is None else int(data["n"]),
            doses=[Dose.from_dict(d) for d in data.get("doses") or []],
            kratom_g_per_day=(float(g[0]), float(g[1])) if g else None,
        )


class _DeferredEvidence:
    """``Extraction.design_evidence`` when ``extract`` left it to be built (``_build`` in the
    instance's fields): the first read builds it and stores it on the instance, which then
    shadows this (non-data) descriptor."""

    def __get__(self, obj: Extraction | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        fields = obj.__dict__
        build = fields.get("_build")
        if build is None:  # built meanwhile by another thread, or never deferred
            if "design_evidence" in fields:
                return fields["design_evidence"]
            raise AttributeError("design_evidence")
        evidence = fields.setdefault("design_evidence", build())  # one object if threads race
        fields.pop("_build", None)  # the record's text and hits can go now
        return evidence


_EXTRACTION_FIELDS = ("design", "design_confidence", "design_evidence", "n", "doses",
                      "kratom_g_per_day")
setattr(Extraction, "design_evidence", _DeferredEvidence())  # noqa: B010 (after @dataclass)


@dataclass(frozen=True)
class Labels:
    """A record's topic labels as stored: the model version that made them, the topics
    assigned, every topic's score (0-1) and the evidence for each topic."""

    version: str
    topics: list[str]
    scores: dict[str, float]
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def evidence_phrases(self, topic: str) -> list[str]:
        """Distinct phrases that carried ``topic`` (empty when it was not assigned)."""
        found = self.evidence.get(topic) if topic in self.topics else None
        return list(dict.fromkeys([e.phrase for e in found])) if found else []


@dataclass
class LibraryRecord:
    """A record as the library holds it: when it was first stored, which searches found
    it (saved names, else terms) and its labels (None until classified)."""

    record: Record
    first_stored: str = ""
    searches: list[str] = field(default_factory=list)
    labels: Labels | None = None
    extraction: Extraction | None = None
    extractor_version: str = ""


# ---- the export schema ------------------------------------------------------------------

# "nested": a list of objects (JSONL writes them as objects, Parquet as a list of structs;
# the flat formats leave it out unless --columns names it, then write it as JSON text)
# "doses": a list of dose objects (JSONL objects, Parquet structs; flat formats: their
# texts '; '-joined); "range": [low, high] numbers (flat formats: 'low-high')
ColumnKind = Literal["int", "float", "bool", "str", "list", "nested", "doses", "range"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    description: str


def _columns(*items: tuple[str, ColumnKind, str]) -> dict[str, Column]:
    return {name: Column(name, kind, text) for name, kind, text in items}


# column -> type and what it holds (README "Export columns" is checked against this)
COLUMNS: dict[str, Column] = _columns(
    ("pmid", "int", "PubMed ID"),
    ("title", "str", "article title, inline markup reduced to text"),
    ("abstract", "str", "abstract; structured sections as 'LABEL: text' paragraphs"),
    ("authors", "list", "authors as 'Last FM', collective names as written (list)"),
    ("first_author", "str", "the first author as 'Last FM' (or a collective name)"),
    ("affiliations", "list", "distinct author affiliations (list)"),
    ("journal", "str", "journal title (book title for PubMed books)"),
    ("journal_iso", "str", "ISO journal abbreviation"),
    ("year", "int", "publication year (from MedlineDate when needed)"),
    ("pub_date", "str",
     "publication date: YYYY-MM-DD, YYYY-MM, 'YYYY Season' or PubMed's MedlineDate"),
    ("volume", "str", "volume"),
    ("issue", "str", "issue"),
    ("pages", "str", "pages"),
    ("doi", "str", "DOI"),
    ("pmcid", "str", "PubMed Central ID"),
    ("url", "str", "PubMed page"),
    ("mesh", "list", "MeSH descriptors, '*' marks a major topic, qualifiers after '/' (list)"),
    ("keywords", "list", "author keywords (list)"),
    ("publication_types", "list", "PubMed publication types (list)"),
    ("language", "list", "language codes (list)"),
    ("retracted", "bool", "true when PubMed links a retraction notice"),
    ("corrections", "list", "retraction/erratum links as 'Type: source (PMID n)' (list)"),
    ("searches", "list", "saved-search names (or terms) that found the record (list)"),
    ("first_seen", "str", "when the library first stored the record (UTC, ISO 8601)"),
    ("topics", "list", "topics the classifier assigned (list; empty until classified)"),
    *((f"score_{t}", "float", f"classifier score for {t}, 0-1 (empty until classified)")
      for t in TOPICS),
    ("classifier_version", "str", "version of the classifier that made the labels"),
    *((f"evidence_{t}", "list", f"phrases that carried {t} when assigned (list)")
      for t in TOPICS),
    ("evidence", "nested", "every topic's evidence as objects: topic, assigned, phrase, "
     "sentence, source (JSONL and Parquet; flat formats only with --columns, as JSON)"),
    ("design", "str", "study design: rct, clinical, observational, case, qualitative, "
     "systematic_review, review, animal, in_vitro, chemistry or other (empty until extracted)"),
    ("n", "int", "people analysed as the abstract states them (empty when it states none)"),
    ("doses", "doses", "amounts taken or given: objects {text, low, high, unit, per, "
     "substance, sentence} in JSONL and Parquet; their texts '; '-joined in CSV, TSV, XLSX"),
    ("kratom_g_per_day", "range", "grams of kratom per day the abstract reports as [low, "
     "high] ('low-high' in CSV, TSV, XLSX); empty when it reports none"),
    ("extractor_version", "str", "version of the extractor that made design, n and doses"),
)
FLAT_FORMATS = ("csv", "tsv", "xlsx")  # one value per cell: nested columns left out


def column_names(kind: ColumnKind) -> frozenset[str]:
    return frozenset(c.name for c in COLUMNS.values() if c.kind == kind)


def default_columns(fmt: str) -> tuple[str, ...]:
    """The columns an export of ``fmt`` writes without ``--columns``: all, except that the
    flat formats leave nested columns out (their ``evidence_<topic>`` columns say it)."""
    if fmt in FLAT_FORMATS:
        return tuple(c.name for c in COLUMNS.values() if c.kind != "nested")
    return tuple(COLUMNS)


def evidence_objects(labels: Labels | None) -> list[dict[str, Any]]:
    """Every topic's evidence as flat objects (one shape for JSONL and Parquet)."""
    if labels is None:
        return []
    return [{"topic": t, "assigned": t in labels.topics, **e.to_dict()}
            for t in TOPICS for e in labels.evidence.get(t, [])]


_SCORE_KEYS = tuple((f"score_{t}", t) for t in TOPICS)
_EVIDENCE_KEYS = tuple((f"evidence_{t}", t) for t in TOPICS)
_NO_SCORES: dict[str, Any] = {k: None for k, _ in _SCORE_KEYS}


def export_row(item: LibraryRecord) -> dict[str, Any]:
    """One library record -> every column in ``COLUMNS`` (native values: lists stay
    lists; each writer flattens them as its format needs). The record's own rules give
    names, affiliations and headings; the label columns are filled without comprehension
    merges: a 100,000-record export builds this 100,000 times."""
    rec, labels = item.record, item.labels
    names = rec.author_names
    row = {
        "pmid": rec.pmid, "title": rec.title, "abstract": rec.abstract,
        "authors": names, "first_author": names[0] if names else "",
        "affiliations": rec.affiliations, "journal": rec.journal,
        "journal_iso": rec.journal_iso, "year": rec.pub_year, "pub_date": rec.pub_date,
        "volume": rec.volume, "issue": rec.issue, "pages": rec.pages, "doi": rec.doi,
        "pmcid": rec.pmcid, "url": rec.url, "mesh": rec.mesh_headings,
        "keywords": list(rec.keywords), "publication_types": list(rec.publication_types),
        "language": list(rec.languages), "retracted": rec.retracted,
        "corrections": [correction_text(c) for c in rec.corrections],
        "searches": list(item.searches), "first_seen": item.first_stored,
    }
    if labels is None:  # fresh lists: no two rows share one
        row["topics"] = []
        row.update(_NO_SCORES)
        row["classifier_version"] = ""
        row.update({k: [] for k, _ in _EVIDENCE_KEYS})
        row["evidence"] = []
    else:
        scores = labels.scores
        row["topics"] = list(labels.topics)
        for key, topic in _SCORE_KEYS:
            row[key] = scores.get(topic)
        row["classifier_version"] = labels.version
        for key, topic in _EVIDENCE_KEYS:
            row[key] = labels.evidence_phrases(topic)
        row["evidence"] = evidence_objects(labels) if labels.evidence else []
    row.update(extraction_cells(item.extraction, item.extractor_version))
    return row


def extraction_cells(found: Extraction | None, version: str = "") -> dict[str, Any]:
    if found is None:
        return {"design": "", "n": None, "doses": [], "kratom_g_per_day": None,
                "extractor_version": ""}
    return {"design": found.design, "n": found.n,
            "doses": [d.to_dict() for d in found.doses],
            "kratom_g_per_day": list(found.kratom_g_per_day) if found.kratom_g_per_day
            else None, "extractor_version": version}


# ---- export options -----------------------------------------------------------------------

# option -> its CLI flag (the XLSX 'columns' sheet and Parquet metadata name them so)
FLAGS = {"saved": "--saved", "search_id": "--search", "topics": "--topic",
         "designs": "--design", "min_score": "--min-score", "year_from": "--year-from",
         "year_to": "--year-to", "since": "--since", "new": "--new", "excel": "--excel"}


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; ``since`` is an ISO date, the rest as the CLI flags."""

    fmt: str
    saved: str | None = None
    search_id: int | None = None
    topics: tuple[str, ...] = ()
    min_score: float | None = None
    year_from: int | None = None
    year_to: int | None = None
    since: str | None = None
    new: bool = False
    columns: tuple[str, ...] = ()  # empty: the format's default_columns
    excel: bool = False
    designs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.columns:
            object.__setattr__(self, "columns", default_columns(self.fmt))

    @property
    def custom_columns(self) -> bool:
        """True when ``--columns`` chose other columns than the format's default."""
        return self.columns != default_columns(self.fmt)

    @property
    def selector(self) -> str:
        """What 'the same search' means for ``--new``: the saved name, the search id, or
        the whole library; the other filters do not matter."""
        if self.saved:
            return f"saved:{self.saved}"
        return f"search:{self.search_id}" if self.search_id is not None else "library"

    @property
    def keeps_every_record(self) -> bool:
        """True when no row filter applies: the export delivers every record of its
        selector, so a later ``--new`` may start from it."""
        return not (self.topics or self.min_score is not None or self.year_from is not None
                    or self.year_to is not None or self.since or self.designs)

    def flags(self) -> dict[str, str]:
        """The options given, as the CLI spells them (``--topic: safety, dosing``)."""
        out: dict[str, str] = {}
        for key, flag in FLAGS.items():
            value = getattr(self, key)
            if value in (None, (), False):
                continue
            out[flag] = ", ".join(value) if isinstance(value, tuple) else str(value)
        return out
