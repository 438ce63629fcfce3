"""Tests with real servers and processes on loopback."""
