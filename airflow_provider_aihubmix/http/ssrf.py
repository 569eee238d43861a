"""SSRF guard for image downloads: which URLs and addresses an image may be fetched from.

Image URLs come from the API's answers, and a compromised or confused upstream could point
them at a cloud metadata service or a private network; the hook checks every URL (and every
address its host resolves to) here before connecting.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError
from airflow_provider_aihubmix.redaction import redact_url

_METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "169.254.170.2")
)

Resolver = Callable[[str], list[str]]


def system_resolver(host: str) -> list[str]:
    """All addresses ``host`` resolves to; empty when it does not resolve (httpx will then fail)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` spells (``[v6]``, a ``%zone`` and IPv4-mapped IPv6 unwrapped), or None."""
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761) or a loopback IP literal."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    return ip is not None and ip.is_loopback


def refused_address(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why ``address`` is not a place to fetch an image from, or ``None`` when it is.

    An answer's image URL is untrusted input: pointed at this worker's own loopback services it
    would make the worker probe them. Loopback is refused too unless ``allow_loopback`` (the API
    itself is on loopback: the sandbox); link-local (cloud metadata), private, shared (CGNAT,
    Alibaba's 100.100.100.200), multicast and reserved ranges are refused unless
    ``allow_private_image_hosts`` is set on the connection.
    """
    ip = _ip(address)
    if ip is None:
        return None
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address (this worker itself)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "a non-routable address"
    if ip.is_private or (
        isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10")
    ):
        return "a private-network address"
    return None


def check_download_url(
    url: str, addresses: list[str] | None, *, allow_private: bool, allow_loopback: bool = False
) -> None:
    """Raise :class:`AIHubMixDownloadError` when ``url`` may not be fetched (scheme, host, address).

    ``addresses`` are what the host resolved to (``None``: not resolved, e.g. a literal IP).
    ``allow_loopback``: the API base URL is itself on loopback (the sandbox), so its image host is too.
    A non-http(s) URL (``file://``, ``ftp://``) is refused by name, never read.
    """
    parts = urlsplit(url)
    shown = redact_url(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise AIHubMixDownloadError(
            f"Refusing to download {shown!r}: the answer's image URL uses {scheme or 'no'}:// and only "
            "http and https URLs are fetched"
        )
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise AIHubMixDownloadError(f"Refusing to download {shown!r}: the URL has no host")
    if allow_private:
        return
    opt_out = "set the connection extra allow_private_image_hosts to opt out"
    if host in _METADATA_HOSTS:
        raise AIHubMixDownloadError(
            f"Refusing to download {shown!r}: {host} is a cloud metadata host ({opt_out})"
        )
    if not allow_loopback and is_loopback_host(host):
        raise AIHubMixDownloadError(
            f"Refusing to download {shown!r}: {host} is a loopback address (this worker itself), and the "
            f"API base URL is not on loopback ({opt_out})"
        )
    for address in [host, *(addresses or [])]:
        reason = refused_address(address, allow_loopback=allow_loopback)
        if reason:
            what = f"{host} is" if address == host else f"{host} resolves to {address},"
            raise AIHubMixDownloadError(f"Refusing to download {shown!r}: {what} {reason} ({opt_out})")


def is_ip_literal(host: str) -> bool:
    return _ip(host) is not None
