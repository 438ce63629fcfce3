"""Frontends without a UI: the headless daemon and one-shot commands."""
