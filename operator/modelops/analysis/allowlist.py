"""Which Prometheus addresses the operator may query: the `--prometheus-allow` list (pure, no I/O).

Whoever may create a ModelDeployment writes `spec.monitoring.prometheusUrl`; without a list the
operator would fetch any URL it is given from inside the cluster. `factory.provider_for` checks the
URL against the list the operator was started with, and an address not on it is never requested.

An entry is either
- a URL prefix, `http(s)://host[:port][/path]`: same scheme, host and port (the scheme's default
  when left out), and the URL's path inside that path (whole segments, so `/prom` does not allow
  `/prometheus`);
- or `host[:port]`: that host over http or https, on that port or, without one, on any port.
A host may start with `*.` to allow every name below a domain (`*.monitoring.svc`). Hosts compare
case-insensitively; a URL with credentials in it (`user@host`) is never allowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

ALLOW_FLAG = "--prometheus-allow"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST.match(host))
    return True


@dataclass(frozen=True)
class AllowedPrometheus:
    """One parsed entry of the allow-list."""

    host: str  # lowercase; `*.example.com` allows names below example.com
    scheme: str | None = None  # None: http or https
    port: int | None = None  # None: any port (host-only entries) or the scheme's default (URL entries)
    path: str = ""  # without its trailing slash

    def allows(self, url: SplitResult) -> bool:
        scheme = url.scheme.lower()
        host = (url.hostname or "").lower()
        if scheme not in _DEFAULT_PORTS or not host or url.username is not None or url.password is not None:
            return False
        if self.scheme is not None and scheme != self.scheme:
            return False
        if self.host.startswith("*."):
            if not host.endswith(self.host[1:]):
                return False
        elif host != self.host:
            return False
        port = url.port or _DEFAULT_PORTS[scheme]
        wanted = self.port if self.port is not None else (_DEFAULT_PORTS[self.scheme] if self.scheme else None)
        if wanted is not None and port != wanted:
            return False
        path = url.path.rstrip("/")
        return path == self.path or path.startswith(self.path + "/")


def parse_allow_entry(entry: str) -> AllowedPrometheus:
    """One `--prometheus-allow` value; ValueError naming the entry when it is not one of the two forms."""
    text = entry.strip()
    problem = f"{ALLOW_FLAG} {entry!r}: expected http(s)://host[:port][/path] or host[:port]"
    has_scheme = "://" in text
    try:
        url = urlsplit(text if has_scheme else f"//{text}")
        port = url.port
    except ValueError as exc:
        raise ValueError(problem) from exc
    host = (url.hostname or "").lower()
    if not _valid_host(host) or url.username is not None or url.query or url.fragment:
        raise ValueError(problem)
    if has_scheme:
        if url.scheme.lower() not in _DEFAULT_PORTS:
            raise ValueError(problem)
        return AllowedPrometheus(host=host, scheme=url.scheme.lower(), port=port, path=url.path.rstrip("/"))
    if url.path:
        raise ValueError(f"{problem} (a path needs the scheme in front)")
    return AllowedPrometheus(host=host, port=port)


def parse_allow_list(entries: Iterable[str]) -> tuple[AllowedPrometheus, ...]:
    """Every `--prometheus-allow` value parsed; the operator calls this at startup to fail early."""
    return tuple(parse_allow_entry(e) for e in entries if e.strip())


def prometheus_allowed(url: str, allowed: Sequence[AllowedPrometheus]) -> bool:
    """Whether the operator may query `url` (spec.monitoring.prometheusUrl)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here, and a URL we cannot read is not allowed
    except ValueError:
        return False
    return any(entry.allows(parts) for entry in allowed)


def refusal(url: str) -> str:
    """The message of an Error reading for a URL not on the list: it names the URL and the flag."""
    shown = url if len(url) <= 200 else url[:200] + "..."
    return (f"prometheusUrl {shown} is not allowed by the operator's {ALLOW_FLAG} list; "
            f"ask the operator's administrator to add it, or leave prometheusUrl out to scrape the pods")
