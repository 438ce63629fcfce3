"""Plug-in kinds: how tables whose kind picks their keys ([[host]], [[traffic]], [[sink]], [[campaign_feed]])
are declared, and how any table's keys are declared as an options dataclass ([[probe]], [[campaign]], …).

A `Section` is one such table type: its name ("host"), the key that picks the kind (`source`, `kind`) and
its kinds, in a plain list. A `Kind` is a name, an options dataclass and a build function:

- the options dataclass subclasses the section's base (the keys every table of the section takes) and
  declares each key it adds with a field helper below (`string()`, `duration()`, `headers()`, `tls()`, …),
  which says how the key is read and checked; the dataclass's types say what the build function gets;
  `validate()` checks what no key alone can (umami: a token, or a username and a password) by raising
  OptionError;
- the build function turns validated options into the running object (a source, a sink). It imports the
  heavy code (httpx, numpy, psutil) inside itself, so that declaring and validating stay cheap to import.

surgewatch.config reads every table against the options of its kind, with the same one-line errors as any
other key: a key that another kind of the section takes is refused as "KEY only applies to source 'ga4'",
a key no kind takes as "unknown key 'KEY'".

Adding a kind is one module (its options, its build function, `KINDS = [Kind(...)]`) plus one line in its
section's list in surgewatch.registry (kind name → that module); tests/integration/test_plugins.py adds one in a test.
Option groups several kinds share are one helper (`tls()` reads ca_file, tls_verify, cert_file and key_file
into one TlsConfig). Nothing here imports the rest of surgewatch.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

C = TypeVar("C")  # a kind's options dataclass
X = TypeVar("X")  # what its build function is given besides the options (the section's build context)
R = TypeVar("R")  # what it builds (a Source, a Sink)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings of one HTTP source or sink: keys ca_file, tls_verify, cert_file, key_file."""

    ca_file: str | None = None  # trust only this CA bundle (PEM) instead of the system's CA store
    verify: bool = True  # tls_verify = false accepts any certificate (loudly reported by check and the TUI)
    cert_file: str | None = None  # client certificate (PEM) for mTLS; may hold the key too
    key_file: str | None = None

    @property
    def is_default(self) -> bool:
        """True when nothing differs from verifying against the system's CA store without a client cert."""
        return self.verify and self.ca_file is None and self.cert_file is None


TLS_KEYS = ("ca_file", "tls_verify", "cert_file", "key_file")


class OptionError(Exception):
    """A kind's options are wrong together: `key` (None: the table itself) and the one-line `message`."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class Options(Protocol):
    """What the config asks of every options dataclass once its keys are read."""

    def validate(self) -> None:
        """Raise OptionError when the keys are wrong together."""


class Reader(Protocol):
    """What a field helper may ask of the table being read (surgewatch.config implements it).

    Every method takes the key out of the table, checks it and raises the config's one-line error; `fail`
    makes that error for a check of the caller's own."""

    def fail(self, key: str | None, msg: str) -> Exception: ...

    def string(self, key: str, default: str | None, required: bool = False) -> str | None: ...
    def ident(self, key: str) -> str | None: ...
    def header_value(self, key: str) -> str | None: ...
    def choice(self, key: str, allowed: set[str], required: bool = False) -> str | None: ...
    def integer(self, key: str, default: int | None) -> int | None: ...
    def number(self, key: str, default: float | None, minimum: float | None = None) -> float | None: ...
    def timestamp(self, key: str) -> float | None: ...
    def count(self, key: str, default: int) -> int: ...
    def severity(self, key: str, default: Any) -> Any: ...
    def duration(self, key: str, default: float | None, minimum: float = 0.0) -> float | None: ...
    def str_list(self, key: str) -> list[str]: ...
    def str_map(self, key: str) -> dict[str, str]: ...
    def headers(self) -> dict[str, str]: ...
    def tls(self) -> TlsConfig: ...


ReadFn = Callable[[Reader, str], Any]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """How one options field is read: `read(table, key)`, the TOML keys it takes, whether it must be there."""

    read: ReadFn
    keys: tuple[str, ...] = ()  # empty: the field's own name
    required: bool = False
    hint: str = ""  # said after the line of a required key that is absent: "duration is required (HINT)"


_SPEC = "surgewatch.option"


def option(read: ReadFn, *, default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING,
           required: bool = False, keys: tuple[str, ...] = (), hint: str = "", repr: bool = True) -> Any:
    """A dataclass field read from the table by `read`; a required one has no default (a missing key is the
    section's "KEY is required" / "source 'x' needs KEY" line, then ` (hint)` if one is given)."""
    spec = OptionSpec(read, keys, required, hint)
    if required:
        return field(metadata={_SPEC: spec}, repr=repr)
    return field(default=default, default_factory=default_factory, metadata={_SPEC: spec}, repr=repr)


def string(*, required: bool = False) -> Any:
    """A string (`${VAR}` expanded); None when absent."""
    return option(lambda r, k: r.string(k, None), default=None, required=required)


def ident(*, required: bool = False) -> Any:
    """An id written as a string or a bare whole number (Matomo idSite, GA4 property), kept as a string."""
    return option(lambda r, k: r.ident(k), default=None, required=required)


def secret(*, required: bool = False) -> Any:
    """A string that is a secret (a password, an API key): like string(), left out of the options' repr."""
    return option(lambda r, k: r.string(k, None), default=None, required=required, repr=False)


def secret_header() -> Any:
    """A secret sent inside an HTTP header (a token): refused if it holds CR, LF or NUL; left out of repr."""
    return option(lambda r, k: r.header_value(k), default=None, repr=False)


def choice(default: str, allowed: set[str]) -> Any:
    return option(lambda r, k: r.choice(k, allowed) or default, default=default)


def integer() -> Any:
    return option(lambda r, k: r.integer(k, None), default=None)


def count(default: int) -> Any:
    """A whole number of at least 1."""
    return option(lambda r, k: r.count(k, default), default=default)


def duration(default: float | None = None, *, minimum: float = 0.0) -> Any:
    """A duration ("5s", "2m" or seconds) of at least `minimum` seconds."""
    return option(lambda r, k: _or(r.duration(k, default, minimum=minimum), default), default=default)


def str_list() -> Any:
    return option(lambda r, k: tuple(r.str_list(k)), default=())


def str_map() -> Any:
    return option(lambda r, k: r.str_map(k), default_factory=dict)


def headers() -> Any:
    """The `headers` table sent with every request (names must be HTTP tokens, values one line)."""
    return option(lambda r, k: r.headers(), default_factory=dict)


def tls() -> Any:
    """ca_file, tls_verify, cert_file and key_file, read into one TlsConfig (files must exist)."""
    return option(lambda r, k: r.tls(), default_factory=TlsConfig, keys=TLS_KEYS)


@dataclass(frozen=True, kw_only=True)
class HttpOptions:
    """The option group of every kind read or delivered over HTTP(S): `headers` and the TLS keys."""

    headers: Mapping[str, str] = headers()
    tls: TlsConfig = tls()


@dataclass(frozen=True, kw_only=True)
class Endpoint(HttpOptions):
    """An HTTP kind whose `url` the user must name, with its headers and TLS keys."""

    url: str = string(required=True)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def specs(options: type) -> list[tuple[str, OptionSpec]]:
    """(field name, spec) of every field of an options dataclass read from the table, in declaration order."""
    return [(f.name, f.metadata[_SPEC]) for f in dataclasses.fields(options) if _SPEC in f.metadata]


def keys_of(options: type) -> set[str]:
    """The TOML keys an options dataclass takes (besides the section's name and kind keys)."""
    return {k for name, spec in specs(options) for k in (spec.keys or (name,))}


@dataclass(frozen=True)
class Kind(Generic[C, X, R]):
    """One plug-in kind: `name` as written in the config, its options dataclass, and how to build it."""

    name: str
    options: type[C]
    build: Callable[[C, X], R]


def is_required(kind: str, key: str) -> str:
    """The usual line for a required key that is absent."""
    return f"{key} is required"


class Section(Generic[X, R]):
    """A table type whose `selector` key picks a kind, and where each kind is declared.

    `modules` maps each kind's name, in list order, to the module that declares it in its `KINDS` list; a
    module is imported when one of its kinds is first needed (a table names it, or it is built), so a config
    pays only for the kinds it uses. `missing(kind, key)` and `elsewhere(key, kinds)` phrase a required key
    that is absent and a key only other kinds take. `named`: tables carry a `name` key (hosts, traffic) or not
    (sinks)."""

    def __init__(self, name: str, selector: str, modules: Mapping[str, str],
                 elsewhere: Callable[[str, Sequence[str]], str], missing: Callable[[str, str], str] = is_required,
                 named: bool = True) -> None:
        self.name, self.selector, self.modules = name, selector, dict(modules)
        self.elsewhere, self.missing, self.named = elsewhere, missing, named

    def names(self) -> set[str]:
        return set(self.modules)

    def kind(self, name: str) -> Kind[Any, X, R]:
        """The kind called `name` (KeyError if the section has none), importing the module that declares it."""
        if name in self.modules:
            for k in importlib.import_module(self.modules[name]).KINDS:
                if k.name == name:
                    return cast("Kind[Any, X, R]", k)
        raise KeyError(f"{self.name} {self.selector} {name!r} is not a known kind")

    @property
    def kinds(self) -> list[Kind[Any, X, R]]:
        """Every kind of the section, in list order (imports every module that declares one)."""
        return [self.kind(name) for name in self.modules]

    def taken_by(self, key: str) -> list[str]:
        """The kinds (in list order) whose options take `key`."""
        return [k.name for k in self.kinds if key in keys_of(k.options)]

    def build(self, cfg: Any, context: X) -> R:
        """Build one validated table (an instance of its kind's options) into the running object."""
        kind = self.kind(getattr(cfg, self.selector))
        if not isinstance(cfg, kind.options):
            raise TypeError(f"{self.name} {kind.name!r} needs {kind.options.__name__}, got {type(cfg).__name__}")
        return kind.build(cfg, context)


def one_of(kinds: Sequence[str]) -> str:
    """'ga4' or 'json', 'matomo' for messages."""
    return ", ".join(repr(k) for k in kinds)


def and_list(words: Sequence[str]) -> str:
    """a, b and c."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"

