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


# -- config text kept in files (recordings) -------------------------------------------------------

REDACTED = "REDACTED"
# Config keys whose string values are secrets wherever they appear (headers: every value is).
SECRET_CONFIG_KEYS = frozenset({"token", "password", "passwd", "secret", "api_key", "apikey", "client_secret",
                                "private_key", "credentials"})
_WEBHOOK_KINDS = frozenset({"slack", "webhook"})  # their URL's path is the secret (Slack: /services/T/B/xyz)
_REF_RE = re.compile(r"\$\{(\w+)\}")
_SCHEME_WORDS = frozenset({"bearer", "basic", "token"})


def _only_references(value: str) -> bool:
    """Whether a value holds no secret of its own: only `${VAR}` references and a scheme word ("Bearer")."""
    rest = _REF_RE.sub(" ", value).split()
    return bool(_REF_RE.search(value)) and all(w.lower() in _SCHEME_WORDS for w in rest)


def _config_secrets(node: Any, whole: list[str], parts: list[str], kind: str | None = None) -> None:
    """Collect the secret strings of a parsed config: `whole` values (quoted in the text) and URL `parts`."""
    if isinstance(node, list):
        for item in node:
            _config_secrets(item, whole, parts, kind)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("kind") if isinstance(node.get("kind"), str) else kind
    for key, value in node.items():
        if isinstance(value, (dict, list)):
            if key == "headers" and isinstance(value, dict):
                whole.extend(v for v in value.values() if isinstance(v, str))
            else:
                _config_secrets(value, whole, parts, kind)
        elif isinstance(value, str) and key in SECRET_CONFIG_KEYS:
            whole.append(value)
        elif isinstance(value, str) and key == "url" and not _only_references(value):
            try:
                u = urlsplit(value)
                password = u.password
            except ValueError:
                continue
            if password:
                parts.append(password)
            parts.extend(_query_secrets(u.query))
            if kind in _WEBHOOK_KINDS and u.path.strip("/"):
                parts.append(u.path.lstrip("/") + (f"?{u.query}" if u.query else ""))


def redact_config_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """The config TOML with every secret value replaced by "REDACTED", still a config that loads (for replay).

    Tokens, passwords, API keys and header values become "REDACTED" (a value that is only a `${VAR}` reference
    is kept: it names, not holds, the secret); URLs lose their password, secret query values and, for webhook
    and Slack sinks, their path; the values of referenced environment variables never appear. A config whose
    secret cannot be found in its text (written with TOML escapes) is not kept at all: "" (replay then asks for
    --config).
    """
    import os
    import tomllib

    env = os.environ if environ is None else environ
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return ""
    whole: list[str] = []
    parts: list[str] = []
    _config_secrets(doc, whole, parts)
    out = text
    for value in sorted({w for w in whole if w and not _only_references(w)}, key=len, reverse=True):
        forms = (f'"""{value}"""', "'''" + value + "'''", f'"{_toml_basic(value)}"', f"'{value}'")
        quoted = [q for q in forms if q in out]
        if not quoted:
            return ""
        for q in quoted:
            out = out.replace(q, f'"{REDACTED}"')
    for value in sorted({p for p in parts if len(p) >= MIN_SECRET}, key=len, reverse=True):
        written = next((w for w in (value, _toml_basic(value)) if w in out), None)
        if written is None:
            return ""
        out = out.replace(written, REDACTED)
    # A secret given through the environment must not appear either (say, pasted into a comment).
    refs = {r for v in (*whole, *parts) for r in _REF_RE.findall(v)}
    for value in sorted({env[r] for r in refs if len(env.get(r, "")) >= MIN_SECRET}, key=len, reverse=True):
        out = out.replace(value, REDACTED)
    return out


def _toml_basic(value: str) -> str:
    """`value` as written inside a TOML basic string ("…"): backslash and quote escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
