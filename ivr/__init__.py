"""hotline-ivr: telephony front end for 12345 government service hotlines."""

__version__ = "0.1.0"
