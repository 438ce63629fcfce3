"""surgewatch's tests: unit/, integration/ (real servers on loopback), tui/."""
