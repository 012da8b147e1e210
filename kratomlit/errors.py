"""Every error kratomlit expects, as one tree; the CLI turns each into a message and exit code.

    KratomlitError                  exit 1
    ├── UsageError                  exit 2   bad flag value, date, saved query or config file
    ├── NetworkError                exit 3   NCBI unreachable or failing after every retry
    ├── NCBIError                   exit 4   NCBI answered with an error (bad query, error page)
    │   └── ContentError            exit 4   an answer kratomlit refuses to parse (DTD, entities)
    ├── StorageError                exit 5   the library database cannot be used
    ├── ExportError                 exit 6   the export file cannot be written
    ├── InputError                  exit 7   a bad line in a file given to classify/eval
    ├── IncompleteError             exit 8   a search listed fewer PMIDs than PubMed's Count
    ├── BusyError                   exit 9   another refresh holds the lock past --wait
    └── PartialError                exit 10  a refresh saved some searches, others failed

Each message says what went wrong and what to do; the library never exits the process.
"""


class KratomlitError(Exception):
    """Base of every expected failure."""

    exit_code = 1


class UsageError(KratomlitError):
    """The user asked for something malformed (flag, date, saved query, config file)."""

    exit_code = 2


class NetworkError(KratomlitError):
    """E-utilities could not be reached or kept failing after every retry."""

    exit_code = 3


class NCBIError(KratomlitError):
    """E-utilities answered, but with an error instead of data."""

    exit_code = 4


class ContentError(NCBIError):
    """An answer kratomlit refuses to parse: it declares its own DTD or entities, or names a
    DTD kratomlit does not have. Asking again gets the same answer, so it is never retried.

    Parsers raise it with what was refused; the E-utilities client adds which PMIDs (or
    which search) the answer was for.
    """


class StorageError(KratomlitError):
    """The local library database is unusable."""

    exit_code = 5


class ExportError(KratomlitError):
    """An export could not be written."""

    exit_code = 6


class InputError(KratomlitError):
    """A file given to ``classify``/``eval`` holds a bad line."""

    exit_code = 7


class IncompleteError(KratomlitError):
    """A search finished but PubMed listed fewer PMIDs than its Count."""

    exit_code = 8


class BusyError(KratomlitError):
    """Another ``refresh`` is running on the same KRATOMLIT_HOME and did not finish in time."""

    exit_code = 9


class PartialError(KratomlitError):
    """A refresh finished some saved searches and failed others (what finished is saved)."""

    exit_code = 10
