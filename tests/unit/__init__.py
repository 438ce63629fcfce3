"""Tests without servers or a terminal."""
