"""kratomlit: mine PubMed for kratom, mitragynine and opioid use disorder literature."""

__version__ = "0.1.0"
