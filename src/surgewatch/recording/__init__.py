"""Recordings: every sample, campaign event and alert of a session in one SQLite file, and what reads them."""
