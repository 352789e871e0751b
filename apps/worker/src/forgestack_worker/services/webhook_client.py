"""The HTTP side of a webhook delivery: one POST to an address the SSRF guard already checked.

The request goes to that address (the Host header and TLS server name carry the URL's host), so
nothing resolves the name again between check and connect. Redirects are never followed. One
deadline covers connect, send and the whole response, so a receiver that hangs or trickles bytes
cannot hold a worker slot past it, and at most `body_cap` bytes of the answer are ever held."""

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from forgestack_shared.ssrf import CheckedTarget

BODY_CAP = 64 * 1024


class DeliveryTimeoutError(Exception):
    """The receiver did not answer in full within the delivery timeout."""


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int
    headers: httpx.Headers
    body: bytes
    """At most the cap; `truncated` says whether more was sent."""
    truncated: bool
    duration_ms: int


class WebhookClient:
    """One per worker process. Plain HTTP reuses connections (keyed by the checked address and
    port, which is the server we checked); HTTPS does not, since one address can serve many names
    and a pooled TLS connection verified for one name must not carry another's requests.

    Each client is made on its first delivery: an httpx client loads the trust store as it is
    built, which would otherwise stand between a worker's start and its first job."""

    def __init__(self, timeout_s: float, verify: ssl.SSLContext | None = None) -> None:
        """`verify`: the trust store for HTTPS (default: the system's); tests pass their own CA."""
        self.timeout_s = timeout_s
        self._verify = verify
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client_for(self, scheme: str) -> httpx.AsyncClient:
        client = self._clients.get(scheme)
        if client is None:
            if scheme == "https":
                client = _client(
                    self.timeout_s, httpx.Limits(max_keepalive_connections=0), self._verify
                )
            else:
                client = _client(self.timeout_s, httpx.Limits(max_connections=100))
            self._clients[scheme] = client
        return client

    async def post(
        self,
        target: CheckedTarget,
        headers: Mapping[str, str],
        body: bytes,
        body_cap: int = BODY_CAP,
    ) -> WebhookResponse:
        client = self._client_for("https" if target.scheme == "https" else "http")
        url = httpx.URL(scheme=target.scheme, host=target.address, port=target.port).join(
            target.target
        )
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s):
                request = client.build_request(
                    "POST",
                    url,
                    headers={**headers, "host": target.host_header},
                    content=body,
                    extensions=extensions,
                )
                response = await client.send(request, stream=True)
                try:
                    received, truncated = await _read_capped(response, body_cap)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise DeliveryTimeoutError(
                f"no complete answer within {self.timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        return WebhookResponse(
            status=response.status_code,
            headers=response.headers,
            body=received,
            truncated=truncated,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


def _client(
    timeout_s: float, limits: httpx.Limits, verify: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    # trust_env=False: an HTTP(S)_PROXY from the environment would connect somewhere unchecked.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
        follow_redirects=False,
        trust_env=False,
        verify=verify if verify is not None else True,
    )


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """Raw bytes (no decompression, so a small gzip bomb stays small), stopping at the cap; the
    rest is never read and the connection is closed rather than drained."""
    received = bytearray()
    async for chunk in response.aiter_raw():
        room = cap - len(received)
        received += chunk[:room]
        if len(chunk) > room:
            return bytes(received), True
    return bytes(received), False
