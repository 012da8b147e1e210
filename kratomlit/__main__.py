"""Allow ``python -m kratomlit``."""

from kratomlit.cli import main

main()
