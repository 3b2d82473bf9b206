"""Frontdoor: one front door for every enquiry a resident sends to a local council."""

__version__ = "0.1.0"
