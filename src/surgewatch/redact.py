"""Secrets kept out of every message: the list of strings a request carried that must never be shown, and scrubbing.

A server may echo the request URL in its error body (`... for /api?api_key=ab%2Bcd...`), so the list holds each
secret in every form it can come back in: as written, percent-decoded (`+` as a space or a plus), and encoded
(`%2B`, `%2F`, `%3D`, either case). `scrub` replaces them all, masks any secret-looking query parameter that is
left, and makes the text inert and one line (see textsafe.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from .textsafe import one_line

__all__ = ["SECRET_PARAM_RE", "param_secrets", "redact_url", "scrub", "secret_forms", "secrets_of"]

MIN_SECRET = 4  # shorter strings are not treated as secrets (they would blank out ordinary words)
MASK = "***"

# Query parameter names whose values are secrets (matched case-insensitively, also as suffixes: x_api_key).
SECRET_PARAM_RE = re.compile(r"(token|token_auth|api_?key|apikey|secret|password|passwd|auth|signature|sig"
                             r"|access_key|session|key|credential|credentials)$", re.IGNORECASE)
# A secret-looking query parameter anywhere in a text (an echoed URL): `?api_key=…`, `&X-Amz-Signature=…`.
_PARAM_IN_TEXT_RE = re.compile(r"([?&;])([\w.\-]*?(?:token|api_?key|apikey|secret|password|passwd|auth|signature"
                               r"|sig|access_key|session|key|credentials?))=([^&#\s\"'<>]+)", re.IGNORECASE)


def secret_forms(value: str) -> set[str]:
    """`value` in every form an echo may carry it: as written, decoded, and percent-encoded."""
    forms = {value, unquote(value), unquote_plus(value), quote(value, safe=""), quote_plus(value, safe=""),
             quote(value, safe="/:=+"), value.replace("/", "\\/")}  # the last: inside a JSON string
    return {f for f in forms if len(f) >= MIN_SECRET}


def _query_secrets(query: str) -> list[str]:
    """Secret values of a raw query string, each as written and as decoded."""
    out = []
    for part in re.split(r"[&;]", query):
        name, eq, raw = part.partition("=")
        if eq and SECRET_PARAM_RE.search(unquote_plus(name)):
            out.append(raw)
    return out


def secrets_of(headers: Mapping[str, str] | None = None, url: str | None = None,
               params: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None) -> list[str]:
    """Every string a request carried that must never be shown: header values (and their bearer parts), the URL's
    password and secret query values, and secret params or form fields; each in all its echoed forms."""
    raw: list[str] = []
    for value in (headers or {}).values():
        raw.append(value)
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() in ("bearer", "basic", "token"):
            raw.append(rest)
    if url:
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            parts, password = None, None
        if password:
            raw.append(password)
        if parts is not None:
            raw += _query_secrets(parts.query)
    raw += param_secrets(params) + param_secrets(data)
    out: set[str] = set()
    for r in raw:
        out |= secret_forms(r)
    return sorted(out, key=len, reverse=True)  # longest first: a secret's encoded form before its plain part


def param_secrets(params: Mapping[str, Any] | None) -> list[str]:
    """The values of secret-looking params or form fields (as sent; see secret_forms for their echoes)."""
    if not params:
        return []
    return [str(v) for k, v in params.items() if SECRET_PARAM_RE.search(str(k)) and len(str(v)) >= MIN_SECRET]


def redact_url(url: object) -> str:
    """The URL with userinfo dropped and secret-looking query values replaced by `***` (safe to show)."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if SECRET_PARAM_RE.search(k) else v) for k, v in pairs], safe="*/:,")
    return one_line(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every secret (in any echoed form) and secret query value masked, inert and on one line."""
    forms: set[str] = set()
    for s in secrets:
        if s and len(s) >= MIN_SECRET:
            forms |= secret_forms(s)
    for f in sorted(forms, key=len, reverse=True):
        # %2b and %2B are the same byte: encoded forms match in either case
        text = re.sub(re.escape(f), MASK, text, flags=re.IGNORECASE) if "%" in f else text.replace(f, MASK)
    text = _PARAM_IN_TEXT_RE.sub(lambda m: f"{m[1]}{m[2]}={MASK}", text)
    return one_line(text)
