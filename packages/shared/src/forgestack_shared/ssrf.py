"""The SSRF guard for outgoing webhooks: which addresses a tenant's URL may make us call.

Written small rather than taken from a library: the kept Python one (advocate) wraps `requests`,
not httpx, and is unmaintained. Every address a host resolves to must be globally routable; the
caller then connects to the address that was checked (see `CheckedTarget`), so a DNS answer that
changes between check and connect (rebinding) cannot redirect the request."""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses it resolves to."""

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
"""Decimal, hex and octal spellings inet_aton accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`)."""


class BlockedUrlError(ValueError):
    """The URL is not one we may call; the message says why without resolving it further."""


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A URL whose every resolved address passed the guard, pinned to one of them."""

    scheme: str
    host: str
    port: int
    address: str
    target: str
    """Path and query, as sent in the request line."""

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def parse_allowlist(text: str) -> list[Network]:
    """`WEBHOOK_ALLOWED_CIDRS`: comma-separated CIDRs; a malformed entry raises ValueError."""
    return [ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip()]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def check_url(
    url: str, allowed: Sequence[Network] = (), resolver: Resolver = system_resolver
) -> CheckedTarget:
    """Raises BlockedUrlError unless every address of the URL's host may be called."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # unbalanced or invalid IPv6 brackets
        raise BlockedUrlError(f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedUrlError(f"scheme {scheme or '(none)'!r} is not allowed: use http or https")
    if parts.username is not None or parts.password is not None:
        raise BlockedUrlError("credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedUrlError("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedUrlError(f"invalid port: {exc}") from exc
    literal = _literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            resolved = await resolver(host, port)
        # UnicodeError: the name does not encode to IDNA (an empty or over-long label).
        except (OSError, UnicodeError) as exc:
            raise BlockedUrlError(f"host {host!r} does not resolve: {exc}") from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
        if not addresses:
            raise BlockedUrlError(f"host {host!r} resolves to no address")
    for address in addresses:
        reason = blocked_reason(address, allowed)
        if reason is not None:
            raise BlockedUrlError(f"{host!r} resolves to {address}, which is {reason}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return CheckedTarget(scheme, host, port, str(addresses[0]), target)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def blocked_reason(address: IPAddress, allowed: Sequence[Network] = ()) -> str | None:
    """None when `address` may be called; else what it is. Addresses that embed an IPv4 address
    (IPv4-mapped, NAT64, 6to4) are judged by the address they reach."""
    embedded = _embedded_ipv4(address)
    if any(address in net or (embedded is not None and embedded in net) for net in allowed):
        return None
    if embedded is not None:
        reason = blocked_reason(embedded)
        return None if reason is None else f"{reason} (embedded in {address})"
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in CGNAT, "carrier-grade NAT"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (not address.is_global, "not globally routable"),
    )
    return next((name for hit, name in checks if hit), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour
