"""Loopback stand-ins for the analytics APIs surgewatch polls, answering in their documented shapes.

Plausible, Umami, Matomo, GA4 and the Prometheus query API cannot run here, so each fake below serves the
request/response shapes (and quirks: bare integers, numbers as strings, old and new Umami shapes, vendor
error bodies) from the vendors' docs (see the project's reference notes on API shapes). Every fake records the
requests it saw, checks credentials like the real service, and can be told to answer with an error instead.

    with FakePlausible(realtime=21, campaigns={"black_friday": 1250}) as fake:
        ... fake.url ..., fake.requests[-1].json()
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from .servers import CannedHttpServer, Route

JSON = {"Content-Type": "application/json"}


def json_route(doc: Any, status: int = 200) -> Route:
    """A JSON answer."""
    return status, JSON, json.dumps(doc).encode()


def text_route(text: str, status: int, ctype: str = "text/plain") -> Route:
    """A plain-text answer (what some servers send for errors)."""
    return status, {"Content-Type": ctype}, text.encode()


@dataclass
class Seen:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as an HTML form (last value wins)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class FakeServer:
    """A CannedHttpServer routing to the fake's methods; records requests; `fail_with` overrides all."""

    def __init__(self, routes: Mapping[str, Any]) -> None:
        self.requests: list[Seen] = []
        self.fail_with: Route | None = None  # answered to every request
        self.override: dict[str, Route] = {}  # answered to requests for one path
        self.fail_next: list[Route] = []  # answered (first one first) before anything else
        wrapped = {path: self._wrap(fn) for path, fn in routes.items()}
        self.server = CannedHttpServer(wrapped)
        self.url = self.server.url

    def _wrap(self, fn: Any) -> Any:
        def route(h: BaseHTTPRequestHandler) -> Route:
            parts = urlsplit(h.path)
            seen = Seen(h.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                        dict(h.headers.items()), getattr(h, "body", b""))
            self.requests.append(seen)
            if self.fail_next:
                return self.fail_next.pop(0)
            if self.fail_with is not None:
                return self.fail_with
            if parts.path in self.override:
                return self.override[parts.path]
            result: Route = fn(seen)
            return result

        return route

    def close(self) -> None:
        """Stop serving."""
        self.server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Plausible


class FakePlausible(FakeServer):
    """Stats API v1 realtime visitors (bare integer body) and v2 `/api/v2/query`."""

    def __init__(self, *, token: str = "plausible-key-0123456789", site_id: str = "shop.example.com",
                 realtime: int = 21, campaigns: Mapping[str, int] | None = None,
                 converted: Mapping[str, int] | None = None, goals: Sequence[str] = ("Purchase",)) -> None:
        self.token, self.site_id, self.realtime = token, site_id, realtime
        self.campaigns = dict(campaigns or {})
        self.converted = dict(converted or {})  # visitors per campaign who completed one of `goals`
        self.goals = set(goals)
        super().__init__({"/api/v1/stats/realtime/visitors": self._v1, "/api/v2/query": self._v2})

    def _denied(self, seen: Seen) -> Route | None:
        if seen.header("Authorization") != f"Bearer {self.token}":
            return json_route({"error": "Invalid API key or site ID. Please double-check your Stats API "
                                        "credentials."}, 401)
        return None

    def _v1(self, seen: Seen) -> Route:
        if (denied := self._denied(seen)) is not None:
            return denied
        if seen.query.get("site_id") != self.site_id:
            return json_route({"error": "Invalid API key or site ID. Please double-check your Stats API "
                                        "credentials."}, 401)
        return 200, JSON, str(self.realtime).encode()  # a bare JSON integer

    def _v2(self, seen: Seen) -> Route:
        if (denied := self._denied(seen)) is not None:
            return denied
        q = seen.json()
        for key in ("site_id", "metrics", "date_range"):
            if key not in q:
                return json_route({"error": f"#: Required property {key} was not present."}, 400)
        if not all(m in ("visitors", "pageviews", "visits") for m in q["metrics"]):
            return json_route({"error": f"#/metrics/0: Invalid metric {q['metrics'][0]!r}"}, 400)
        wanted = set(self.campaigns)
        counts = self.campaigns
        for f in q.get("filters", []):
            if f[0] == "is" and f[1] == "visit:utm_campaign":
                wanted &= set(f[2])
            elif f[0] == "is" and f[1] == "event:goal":
                if not set(f[2]) <= self.goals:  # Plausible refuses a goal the site does not have
                    missing = sorted(set(f[2]) - self.goals)[0]
                    return json_route({"error": f"The goal `{missing}` is not configured for this site. Find "
                                                f"out how to configure goals here: https://plausible.io/docs"}, 400)
                counts = {c: self.converted.get(c, 0) for c in self.campaigns}
        factor = {"visitors": 1.0, "pageviews": 2.5, "visits": 1.2}
        rows = [{"dimensions": [c], "metrics": [int(counts[c] * factor[m]) for m in q["metrics"]]}
                for c in sorted(wanted, key=lambda c: -counts[c]) if counts[c] > 0]
        return json_route({"results": rows, "meta": {}, "query": q})


# ---------------------------------------------------------------------------------------------
# Umami


class FakeUmami(FakeServer):
    """Umami's API: self-hosted (`/api`, login → bearer token) or Cloud (`/v1`, `x-umami-api-key`)."""

    def __init__(self, *, website_id: str = "86d4095c-5a2b-4a1e-9c1f-0123456789ab", cloud: bool = False,
                 api_key: str = "umami-cloud-key-0123456789", username: str = "admin",
                 password: str = "umami-password-xyz", active: int = 5, old_shape: bool = False,
                 campaigns: Mapping[str, int] | None = None, utm_report: bool = True) -> None:
        self.website_id, self.cloud, self.api_key = website_id, cloud, api_key
        self.username, self.password = username, password
        self.active, self.old_shape = active, old_shape
        self.campaigns = dict(campaigns or {})
        self.tokens: set[str] = set()
        self.logins = 0
        prefix = "/v1" if cloud else "/api"
        self.prefix = prefix
        routes: dict[str, Any] = {f"{prefix}/websites/{website_id}/active": self._active,
                                  f"{prefix}/websites/{website_id}/metrics": self._metrics}
        if utm_report:  # added after 2.10, whose `/reports/[reportId]` takes "utm" for an id and answers 400
            routes[f"{prefix}/reports/utm"] = self._utm
        else:
            routes[f"{prefix}/reports/utm"] = lambda seen: json_route({"error": "name is a required field"}, 400)
        if not cloud:
            routes["/api/auth/login"] = self._login
        super().__init__(routes)

    def expire_tokens(self) -> None:
        """Invalidate every issued token (as a restart or an expiry would)."""
        self.tokens.clear()

    def _login(self, seen: Seen) -> Route:
        body = seen.json()
        if body.get("username") != self.username or body.get("password") != self.password:
            return json_route({"error": "Incorrect username and/or password."}, 401)
        token = secrets.token_hex(16)
        self.tokens.add(token)
        self.logins += 1
        return json_route({"token": token, "user": {"id": "1", "username": self.username, "role": "admin"}})

    def _denied(self, seen: Seen) -> Route | None:
        if self.cloud:
            ok = seen.header("x-umami-api-key") == self.api_key
        else:
            auth = seen.header("Authorization") or ""
            ok = auth.startswith("Bearer ") and auth[7:] in self.tokens
        return None if ok else text_route("Unauthorized", 401)

    def _active(self, seen: Seen) -> Route:
        if (denied := self._denied(seen)) is not None:
            return denied
        return json_route({"x": self.active} if self.old_shape else {"visitors": self.active})

    def _metrics(self, seen: Seen) -> Route:
        """`metrics?type=query`: page views per stored query string (one campaign split over two strings)."""
        if (denied := self._denied(seen)) is not None:
            return denied
        if seen.query.get("type") != "query" or not {"startAt", "endAt"} <= set(seen.query):
            return json_route({"error": "Bad request"}, 400)
        rows: list[dict[str, Any]] = [{"x": "ref=producthunt", "y": 4}, {"x": None, "y": 9}]
        for c, n in self.campaigns.items():
            rows.append({"x": f"utm_source=newsletter&utm_campaign={c}", "y": n - n // 3})
            rows.append({"x": f"utm_campaign={c}&utm_medium=email", "y": n // 3})
        return json_route(rows)

    def _utm(self, seen: Seen) -> Route:
        if (denied := self._denied(seen)) is not None:
            return denied
        body = seen.json()
        if body.get("websiteId") != self.website_id or "startDate" not in body.get("parameters", {}):
            return json_route({"error": "Bad request"}, 400)
        rows = [{"utm": c, "views": n} for c, n in self.campaigns.items()]
        return json_route({"utm_source": [{"utm": "newsletter", "views": sum(self.campaigns.values())}],
                           "utm_medium": [], "utm_campaign": rows, "utm_term": [], "utm_content": []})


# ---------------------------------------------------------------------------------------------
# Matomo


class FakeMatomo(FakeServer):
    """Matomo's `index.php` RPC: Live.getCounters (numbers as strings) and API.getBulkRequest."""

    def __init__(self, *, token: str = "matomo-token-0123456789abcdef", id_site: str = "1",
                 visitors: int = 33, campaigns: Mapping[str, int] | None = None,
                 converted: Mapping[str, int] | None = None) -> None:
        self.token, self.id_site, self.visitors = token, id_site, visitors
        self.campaigns = dict(campaigns or {})
        self.converted = dict(converted or {})  # per campaign: visits that converted a goal (visitsConverted)
        self.token_in_url = False
        super().__init__({"/index.php": self._rpc})

    def _rpc(self, seen: Seen) -> Route:
        if "token_auth" in seen.query:
            self.token_in_url = True
            return json_route({"result": "error", "message": "token_auth is not allowed in the URL for this "
                                                             "token (secure requests only)"})
        params = {**seen.query, **seen.form()} if seen.method == "POST" else dict(seen.query)
        if params.get("token_auth") != self.token:
            return json_route({"result": "error", "message": "You can't access this resource as it requires "
                                                             "'view' access for the website id = 1."})
        if params.get("module") != "API":
            return text_route("<html>Matomo UI</html>", 200, "text/html")
        return json_route(self._method(params))

    def _method(self, params: Mapping[str, str]) -> Any:
        method = params.get("method")
        if method == "API.getBulkRequest":
            subs = [params[f"urls[{i}]"] for i in range(len(params)) if f"urls[{i}]" in params]
            return [self._method({k: v[-1] for k, v in parse_qs(s).items()}) for s in subs]
        if method != "Live.getCounters":
            return {"result": "error", "message": f"The method '{method}' does not exist or is not available"}
        if params.get("idSite") != self.id_site:
            return {"result": "error", "message": f"An unexpected website was found: {params.get('idSite')}"}
        n, won = self.visitors, sum(self.converted.values())
        segment = params.get("segment")
        if segment:
            parts = dict(p.split("==", 1) for p in segment.split(";"))
            if parts.get("referrerType") != "campaign":
                return {"result": "error", "message": f"Segment {segment!r} is not supported here"}
            name = unquote(parts.get("referrerName", ""))
            n, won = self.campaigns.get(name, 0), self.converted.get(name, 0)
        return [{"visits": str(n), "actions": str(2 * n), "visitors": str(n), "visitsConverted": str(won)}]


# ---------------------------------------------------------------------------------------------
# Google Analytics 4


class FakeGA4(FakeServer):
    """`POST /v1beta/properties/<id>:runRealtimeReport` with a bearer token; values come as strings."""

    def __init__(self, *, token: str = "ya29.ga4-access-token-0123456789", property_id: str = "123456789",
                 active_users: int = 2541) -> None:
        self.token, self.property_id, self.active_users = token, property_id, active_users
        self.tokens = {token}  # every access token accepted (a FakeGoogleToken adds the ones it issues)
        super().__init__({f"/v1beta/properties/{property_id}:runRealtimeReport": self._report})

    def _report(self, seen: Seen) -> Route:
        auth = seen.header("Authorization") or ""
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            return json_route({"error": {"code": 401, "message": "Request had invalid authentication "
                                         "credentials. Expected OAuth 2 access token.",
                                         "status": "UNAUTHENTICATED"}}, 401)
        body = seen.json()
        metrics = [m.get("name") for m in body.get("metrics", [])]
        if metrics != ["activeUsers"] or body.get("dimensions"):
            return json_route({"error": {"code": 400, "message": "Field x is not a valid dimension.",
                                         "status": "INVALID_ARGUMENT"}}, 400)
        doc: dict[str, Any] = {"metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
                               "kind": "analyticsData#runRealtimeReport"}
        if self.active_users:  # GA4 leaves out `rows` (and rowCount) when nobody is active
            doc["rows"] = [{"metricValues": [{"value": str(self.active_users)}]}]
            doc["rowCount"] = 1
        return json_route(doc)


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # the `aud` Google's docs require in the JWT


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class FakeGoogleToken(FakeServer):
    """Google's OAuth 2.0 token endpoint for service accounts (`POST /token`, form-encoded JWT-bearer grant).

    The assertion is an RS256 JWT signed with the account's private key; it is checked against `public_key`
    (issuer, Google's token audience, scope) like Google does. Each grant issues a new access token, valid
    `expires_in` seconds, and adds it to `ga4.tokens` so the GA4 fake accepts it.
    """

    def __init__(self, public_key: Any, email: str, ga4: FakeGA4 | None = None, expires_in: int = 3599) -> None:
        self.public_key, self.email, self.ga4, self.expires_in = public_key, email, ga4, expires_in
        self.issued: list[str] = []
        self.claims: list[dict[str, Any]] = []
        self.delay = 0.0  # seconds each grant takes (a slow token endpoint)
        super().__init__({"/token": self._token})
        self.token_uri = f"{self.url}/token"

    def _grant_error(self, error: str, description: str) -> Route:
        return json_route({"error": error, "error_description": description}, 400)

    def _token(self, seen: Seen) -> Route:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        time.sleep(self.delay)
        form = seen.form()
        if seen.method != "POST" or form.get("grant_type") != JWT_BEARER:
            return self._grant_error("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        try:
            head, claims, sig = form["assertion"].split(".")
            signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            self.public_key.verify(signature, f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
            payload = _b64json(claims)
        except (KeyError, ValueError, InvalidSignature):
            return self._grant_error("invalid_grant", "Invalid JWT Signature.")
        self.claims.append(payload)
        if payload.get("iss") != self.email or payload.get("aud") != GOOGLE_TOKEN_AUDIENCE or not payload.get("scope"):
            return self._grant_error("invalid_grant", "Invalid JWT: Token must be a short-lived token and in a "
                                                      "reasonable timeframe.")
        token = f"ya29.c.issued-{len(self.issued) + 1}-{secrets.token_hex(8)}"
        self.issued.append(token)
        if self.ga4 is not None:
            self.ga4.tokens.add(token)
        return json_route({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})


# ---------------------------------------------------------------------------------------------
# Prometheus query API and plain JSON


class FakePrometheus(FakeServer):
    """`/api/v1/query` answering a fixed instant vector for one known query; anything else is bad_data."""

    def __init__(self, query: str, vector: list[tuple[dict[str, str], str]]) -> None:
        self.query, self.vector = query, vector
        super().__init__({"/api/v1/query": self._query})

    def _query(self, seen: Seen) -> Route:
        q = seen.form().get("query") if seen.method == "POST" else seen.query.get("query")
        if q != self.query:
            err = 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis'
            return json_route({"status": "error", "errorType": "bad_data", "error": err}, 400)
        result = [{"metric": m, "value": [1795438711.49, v]} for m, v in self.vector]
        return json_route({"status": "success", "data": {"resultType": "vector", "result": result}})


class FakeJson(FakeServer):
    """Serves `doc` (changeable between requests) as JSON at `path`."""

    def __init__(self, doc: Any, path: str = "/stats") -> None:
        self.doc = doc
        super().__init__({path: lambda seen: json_route(self.doc)})
        self.endpoint = f"{self.url}{path}"
