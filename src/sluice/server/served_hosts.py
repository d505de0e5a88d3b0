"""Which ``Host`` and ``Origin`` values belong to this server (pure: no I/O).

A browser sends a page's requests with the ``Host`` of the URL it was
given. DNS rebinding points a name the attacker controls
(``evil.example``) at 127.0.0.1: the page is then same-origin with the
server as far as the browser knows, and only the ``Host`` header
(``evil.example:4200``) gives it away. So a request is served only for a
host this server is reached by:

- the address it binds; for a loopback bind also ``localhost`` and every
  loopback address; for a wildcard bind (``0.0.0.0``, ``::``) every IP
  address literal (an address cannot be rebound, only a name can), ``localhost``
  and the machine's own name;
- the names in ``server.allowed_hosts`` (``SLUICE_SERVER_ALLOWED_HOSTS``),
  comma-separated, each ``name`` (any port) or ``name:port``: the name a
  reverse proxy or a LAN DNS gives the server; ``*`` accepts any host.

A cross-site page sends state-changing requests with an ``Origin`` header
naming itself; one is accepted when it is the request's own ``Host``
(same-origin: the UI), or matches an allowed-hosts entry (a proxy that
rewrites ``Host``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from sluice.errors import ConfigurationError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})

#: a host without a port, and its port (None: the scheme's default)
Authority = tuple[str, int | None]


def is_loopback(host: str) -> bool:
    """True for a host only this machine can reach (``127.0.0.1``, ``::1``, ``localhost``)."""
    if _normal(host) in LOOPBACK_NAMES:
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


def _normal(host: str) -> str:
    # "localhost." is "localhost": a trailing dot must not slip a name past the list.
    return host.strip().strip("[]").lower().removesuffix(".")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(_normal(host))
    except ValueError:
        return None


def parse_authority(text: str) -> Authority | None:
    """``host[:port]`` (a ``Host`` header, IPv6 in brackets) as (host, port); None if malformed."""
    try:
        parts = urlsplit("//" + text.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path or parts.query:
        return None
    return _normal(parts.hostname), port


def parse_origin(origin: str) -> Authority | None:
    """The (host, port) of an ``Origin`` header (``scheme://host[:port]``); None for
    ``null`` or anything malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return _normal(parts.hostname), port


@dataclass(frozen=True)
class ServedHosts:
    """The hosts one server answers for (see the module docstring)."""

    #: host names and addresses, any port
    names: frozenset[str]
    #: the configured entries without a port (also among ``names``)
    configured: frozenset[str] = frozenset()
    #: the configured entries with a port: (host, port)
    authorities: frozenset[Authority] = frozenset()
    #: any IP address literal (a wildcard bind)
    any_address: bool = False
    #: any loopback address (a loopback bind)
    loopback_addresses: bool = False
    #: no check at all (``*`` configured)
    anything: bool = False

    def allows_host(self, host_header: str) -> bool:
        """True if a request with this ``Host`` header is for this server."""
        if self.anything:
            return True
        authority = parse_authority(host_header)
        return authority is not None and self._known(authority)

    def allows_origin(self, origin: str, host_header: str | None) -> bool:
        """True if a page from ``origin`` may change things here: it is the origin the
        request was addressed to (``Host``), or a configured one."""
        if self.anything:
            return True
        authority = parse_origin(origin)
        if authority is None:
            return False
        if host_header is not None and authority == parse_authority(host_header):
            return True
        # Never "any port of a built-in name": a page on localhost:8000 is another site.
        return authority[0] in self.configured or authority in self.authorities

    def _known(self, authority: Authority) -> bool:
        host, _ = authority
        if host in self.names or authority in self.authorities:
            return True
        address = _ip(host)
        if address is None:
            return False
        return self.any_address or (self.loopback_addresses and address.is_loopback)


def served_hosts(bind: str, allowed: str = "", machine_name: str | None = None) -> ServedHosts:
    """The hosts a server bound to ``bind`` answers for.

    Args:
        bind: the address it listens on (``127.0.0.1``, ``0.0.0.0``, a name ...).
        allowed: the ``server.allowed_hosts`` setting (comma-separated entries).
        machine_name: this machine's host name, accepted with a wildcard bind.

    Raises:
        ConfigurationError: an entry of ``allowed`` is not ``name`` or ``name:port``.
    """
    entries = [e.strip() for e in allowed.split(",") if e.strip()]
    if "*" in entries:
        return ServedHosts(frozenset(), anything=True)
    names: set[str] = set()
    authorities: set[Authority] = set()
    for entry in entries:
        authority = parse_authority(entry)
        if authority is None:
            raise ConfigurationError(
                f"server.allowed_hosts: {entry!r} is not a host name or host:port"
            )
        if authority[1] is None:
            names.add(authority[0])
        else:
            authorities.add(authority)
    wildcard = bind.strip() in WILDCARD_BINDS
    loopback = wildcard or is_loopback(bind)
    configured = frozenset(names)
    if loopback:
        names |= LOOPBACK_NAMES
    if wildcard and machine_name:
        names.add(_normal(machine_name))
    if not wildcard:
        names.add(_normal(bind))
    return ServedHosts(
        frozenset(names),
        configured,
        frozenset(authorities),
        any_address=wildcard,
        loopback_addresses=loopback,
    )
