"""Corpus preparation and end-to-end training recipes."""
