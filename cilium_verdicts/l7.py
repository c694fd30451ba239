"""L7 HTTP rules as Cilium 1.18 has them (``toPorts[].rules.http[]``) and the request a probe sends.

Sources: docs.cilium.io "Layer 7 Examples" (HTTP: method, path, host, headers, headerMatches);
cilium/cilium pkg/policy/api/http.go (PortRuleHTTP, HeaderMatch, MismatchAction) and
pkg/envoy/server.go ``getHTTPRule`` (the translation to Envoy matchers):

- ``path``, ``method``, ``host`` are regexes Envoy matches against the whole ``:path``, ``:method``
  and ``:authority`` (the Host header); missing or empty = any.
- ``headers`` entries are ``"Name"`` (the header must be present) or ``"Name: value"`` (split on the
  first space, the ``:`` trimmed: the header must have exactly that value).
- ``headerMatches`` entries ``{name, value, mismatch}``: without ``value`` (and ``secret``) the header
  must be present, with ``value`` it must equal it. Without ``mismatch`` a mismatch fails the rule
  (the request gets Envoy's 403); with a mismatch action (LOG, ADD, DELETE, REPLACE) "the overall rule
  is still considered as matching" (http.go): the request passes (logged or its header rewritten).
- All conditions of one rule must hold; the request is allowed when any rule of any allowing port rule
  matches (several rules are unioned).
Header names are case-insensitive (RFC 9110 §5.1; Envoy lower-cases them), values are compared
exactly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

MISMATCH_ACTIONS = ("LOG", "ADD", "DELETE", "REPLACE")


@dataclass(frozen=True)
class Request:
    """What the probe sends: method, path, the Host header and the other headers (lower-case names)."""
    method: str
    path: str
    host: str
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        if name.lower() == "host":
            return self.host
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class HTTPRule:
    """One ``rules.http`` entry. ``headers``: (name, exact value or None = present);
    ``header_matches``: (name, exact value or None = present, mismatch action or None)."""
    method: str | None
    path: str | None
    host: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    header_matches: tuple[tuple[str, str | None, str | None], ...] = ()

    def matches(self, request: "Request | str", path: str | None = None) -> bool:
        if isinstance(request, str):  # matches(method, path): a request without headers
            request = Request(request, path or "/", "", {})
        return self.failure(request) is None

    def failure(self, request: Request) -> str | None:
        """The first condition the request fails (None: the rule matches it)."""
        for field, pattern, value in (("method", self.method, request.method), ("path", self.path, request.path),
                                      ("host", self.host, request.host)):
            if pattern is not None and re.fullmatch(pattern, value) is None:
                return f"{field} {value!r} does not match {pattern!r}"
        for name, want in self.headers:
            got = request.header(name)
            if got is None or (want is not None and got != want):
                return f"header {name} {'is missing' if got is None else f'is {got!r}, not {want!r}'}"
        for name, want, mismatch in self.header_matches:
            got = request.header(name)
            if (got is None or (want is not None and got != want)) and mismatch is None:
                return f"headerMatches {name} {'is missing' if got is None else f'is {got!r}, not {want!r}'}"
        return None

    def text(self) -> str:
        out = f"{self.method or '*'} {self.path or '*'}"
        if self.host:
            out += f" host={self.host}"
        out += "".join(f" {n}" + (f"={v}" if v is not None else "") for n, v in self.headers)
        out += "".join(f" {n}" + (f"=={v}" if v is not None else "?") + (f"[{m}]" if m else "")
                       for n, v, m in self.header_matches)
        return out


class UnsupportedHTTP(ValueError):
    """A valid field the model does not evaluate (``headerMatches[].secret``: the value lives in a
    Kubernetes Secret the input does not carry)."""


def parse_http(raw: dict) -> HTTPRule:
    """One ``rules.http`` entry (already schema-checked)."""
    headers = []
    for entry in raw.get("headers") or []:
        name, _, value = str(entry).partition(" ")  # getHTTPRule: strings.SplitN(hdr, " ", 2)
        headers.append((name.rstrip(":"), value if _ else None))
    matches = []
    for j, entry in enumerate(raw.get("headerMatches") or []):
        if entry.get("secret"):
            raise UnsupportedHTTP(f"headerMatches[{j}].secret")
        matches.append((entry["name"], entry.get("value") or None, entry.get("mismatch") or None))
    return HTTPRule(raw.get("method") or None, raw.get("path") or None, raw.get("host") or None,
                    tuple(headers), tuple(matches))


def request(text: str, host: str, headers: Mapping[str, str] | None = None) -> Request:
    """``"GET /path"`` (path defaults to ``/``) with the Host header and the probe's headers; a
    ``Host`` among ``headers`` replaces the default."""
    method, _, path = text.partition(" ")
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    return Request(method, path or "/", lowered.pop("host", host), lowered)
