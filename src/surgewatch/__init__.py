"""surgewatch: campaign traffic and server health on one terminal screen."""

__version__ = "0.1.0"
