"""Tests of the dashboard (Textual pilot, SVG snapshots, tmux, Chromium)."""
