"""Rate-limited REST GETs: one weight budget per host, shared by every request made to it through one client.

Each host (scheme://host:port) gets a limiter the first time it is used, with the ``RateLimit`` of that request:
a sliding window of request weights on the monotonic clock. A request's weight is reserved when it is sent and
re-stamped when its reply arrives (the latest moment the server can have counted it), so the client's window
never expires a request before the server's does.

What the servers say wins over what the client counts:

- 429 (rate limit) and 418 (IP ban, Binance) pause the whole host, every concurrent request to it, for
  ``Retry-After`` seconds (exponential backoff with jitter when the header is absent, as on OKX), then the request
  is sent again;
- Binance's ``X-MBX-USED-WEIGHT-<n><unit>`` header (the host's used weight in the limiter's interval, "1M" for a
  minute) resyncs the window with the server's count;
- 5xx answers and transport errors are retried with backoff; other 4xx raise ``RestError`` with the exchange's
  own message.

Every request has a deadline for the whole exchange (connect, headers and body), not only per read: a host that
trickles a byte every few seconds never holds a request longer than ``deadline_s`` (it counts as a transport error,
retried like one); and a body larger than ``max_body_bytes`` is cut off and fails the request at once.

Secrets never reach a log line or an exception: this module logs and quotes only the method and path (query
strings may one day carry secrets); credentials in a URL (``https://user:password@proxy/``) are taken out of it and
sent as basic auth, because httpx logs every request's full URL at INFO; and the values of the headers a caller
passes (an API key) and of a URL's password are blanked in every error message, even one the server echoed them in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import httpx
import orjson

__all__ = ["RateLimit", "RestClient", "RestError", "RestReply", "RestStats", "used_weight_header"]

log = logging.getLogger("mdplatform.history")

#: longest exponential backoff step
_MAX_BACKOFF_S = 30.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: how much of an error body a RestError quotes when it is not the exchange's JSON error
_QUOTE_CHARS = 200


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A host's budget: at most ``weight`` request weight in any ``per_s`` seconds.

    Binance counts a weight per endpoint (spot 6000 per minute); exchanges that count requests (OKX: 20 requests
    per 2 s on ``history-trades``) are a weight of 1 per request.
    """

    weight: int
    per_s: float

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"RateLimit weight must be >= 1, got {self.weight}")
        if not self.per_s > 0:
            raise ValueError(f"RateLimit per_s must be > 0, got {self.per_s}")


@dataclass(slots=True)
class RestStats:
    """What a client did: ``requests`` sent (retries included), ``throttled`` 429/418 answers received,
    ``retries`` requests sent again, ``waited_s`` time spent waiting (budget, Retry-After pauses, backoff),
    ``bytes`` of reply bodies received."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    waited_s: float = 0.0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class RestReply:
    """A successful answer: ``recv_ns`` is ``time.time_ns()`` when the body arrived; ``request`` names what was
    asked ("GET /api/v3/historicalTrades?symbol=BTCUSDT&fromId=5&limit=1000")."""

    status: int
    body: bytes
    recv_ns: int
    request: str


class RestError(Exception):
    """A request that failed for good: a 4xx other than 429/418, or retries exhausted (``status`` 0: the last
    attempt was a transport error). ``message`` is the exchange's own ("-1121 Invalid symbol."); ``path`` has no
    query string."""

    def __init__(self, status: int, message: str, path: str, *, code: str | None = None) -> None:
        super().__init__(f"GET {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.path = path
        self.code = code


def used_weight_header(per_s: float) -> str:
    """Binance's used-weight header for an interval: ``X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)``
    ("x-mbx-used-weight-1m" for 60 s, "-1s" for 1 s, "-2s" for 2 s)."""
    seconds = round(per_s)
    for unit, letter in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= unit and seconds % unit == 0:
            return f"x-mbx-used-weight-{seconds // unit}{letter}"
    return f"x-mbx-used-weight-{max(seconds, 1)}s"


class _Entry:
    """One reserved request weight in a host's window (re-stamped when its reply arrives)."""

    __slots__ = ("answered", "t", "weight")

    def __init__(self, t: float, weight: int) -> None:
        self.t = t
        self.weight = weight
        self.answered = False


class _Host:
    """The limiter of one host: a sliding window of weights, a pause (Retry-After) and the weight in flight."""

    def __init__(self, key: str, limit: RateLimit) -> None:
        self.key = key
        self.limit = limit
        self.window: list[_Entry] = []
        self.paused_until = 0.0
        self.inflight = 0
        self.header = used_weight_header(limit.per_s)
        # requests are admitted one at a time, in arrival order; a waiting request holds the lock
        self.lock = asyncio.Lock()

    def _expire(self, now: float) -> int:
        per = self.limit.per_s
        window = self.window
        if window and any(e.t + per <= now for e in window):
            window[:] = [e for e in window if e.t + per > now]
        return sum(e.weight for e in window)

    async def acquire(self, weight: int, stats: RestStats) -> _Entry:
        async with self.lock:
            while True:
                now = time.monotonic()
                if self.paused_until > now:
                    await _sleep(self.paused_until - now, stats)
                    continue
                used = self._expire(now)
                if used + weight <= self.limit.weight:
                    entry = _Entry(now, weight)
                    self.window.append(entry)
                    self.inflight += weight
                    return entry
                # wait until the oldest reservations have freed enough of the window
                need = used + weight - self.limit.weight
                freed = 0
                wake = now
                for e in sorted(self.window, key=lambda e: e.t):
                    freed += e.weight
                    if freed >= need:
                        wake = e.t + self.limit.per_s
                        break
                await _sleep(max(wake - now, 0.001), stats)

    def answered(self, entry: _Entry, headers: httpx.Headers, *, counted: bool) -> None:
        """The reply to ``entry`` arrived: re-stamp it (or drop it when the server did not count it) and resync
        with the server's used weight when it says what that is."""
        if not entry.answered:
            entry.answered = True
            self.inflight -= entry.weight
        now = time.monotonic()
        if counted:
            entry.t = now
        else:
            with contextlib.suppress(ValueError):
                self.window.remove(entry)
        raw = headers.get(self.header)
        if raw is None:
            return
        try:
            server_used = int(raw)
        except ValueError:
            return
        self.resync(server_used, now)

    def resync(self, server_used: int, now: float) -> None:
        """Make the window hold what the server counts plus what is still in flight (the server has not seen
        those yet, or not all of them)."""
        target = max(server_used, 0) + self.inflight
        used = self._expire(now)
        if target > used:
            self.window.append(_Entry(now, target - used))
            self.window[-1].answered = True
        elif target < used:
            excess = used - target
            kept: list[_Entry] = []
            for e in sorted(self.window, key=lambda e: e.t):
                if excess >= e.weight:
                    excess -= e.weight
                    continue
                if excess > 0:
                    e.weight -= excess
                    excess = 0
                kept.append(e)
            self.window[:] = kept

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


async def _sleep(seconds: float, stats: RestStats) -> None:
    start = time.monotonic()
    await asyncio.sleep(seconds)
    stats.waited_s += time.monotonic() - start


def _retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP-date; None when absent or unreadable."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _without_credentials(url: str) -> tuple[str, httpx.BasicAuth | None, tuple[str, ...]]:
    """(``url`` without its userinfo, that userinfo as basic auth, the secrets it makes: the password (or a lone
    user part) as written and decoded, and the ``Authorization`` token, which a server may echo): httpx logs each
    request's URL, so a URL that carries credentials never goes to it as it is."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, ()
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    # without a password the user part is the credential (a token: https://TOKEN@host/)
    secrets = (parts.password or "", password, token) if password else (parts.username or "", user, token)
    return urlunsplit(parts._replace(netloc=netloc)), httpx.BasicAuth(user, password), secrets


def _blank(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by ``***`` (a server or proxy may echo what it was sent)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _error_message(body: bytes, secrets: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """(message, exchange code) from an error body: Binance ``{"code":-1121,"msg":..}``, OKX
    ``{"code":"51001","msg":..}``; the start of the body otherwise. ``secrets`` are blanked before the body is cut
    short, so no part of one is quoted."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and ("msg" in obj or "code" in obj):
        code = obj.get("code")
        msg = _blank(str(obj.get("msg", "")), secrets)
        return (f"{code} {msg}".strip() if code is not None else msg), (None if code is None else str(code))
    return _blank(body.decode("utf-8", "replace"), secrets)[:_QUOTE_CHARS], None


class RestClient:
    """Rate-limited GETs: one limiter per host, created on first use with that request's ``RateLimit``.

    ``http``: an ``httpx.AsyncClient`` to use (not closed by ``aclose``); one is created otherwise.
    ``max_retries``: how often one request is sent again (after 429/418, 5xx, transport errors) before
    ``RestError``. ``backoff_s``: the first backoff step (doubled per attempt, with jitter, at most 30 s).
    ``max_wait_s``: a ``Retry-After`` longer than this (a Binance IP ban lasts up to 3 days) still pauses the host
    but fails the request at once instead of waiting. ``timeout_s`` bounds each network read (httpx's timeout);
    ``deadline_s`` the whole of one attempt, body included; ``max_body_bytes`` the size of one reply.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        *,
        max_retries: int = 8,
        timeout_s: float = 10,
        backoff_s: float = 0.5,
        max_wait_s: float = 300.0,
        deadline_s: float = 30.0,
        max_body_bytes: int = 64 << 20,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not deadline_s > 0 or max_body_bytes < 1:
            raise ValueError("deadline_s and max_body_bytes must be > 0")
        self._own = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout_s)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.deadline_s = deadline_s
        self.max_body_bytes = max_body_bytes
        self.stats = RestStats()
        self._hosts: dict[str, _Host] = {}

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    def host_limit(self, url: str) -> RateLimit | None:
        """The RateLimit the limiter of ``url``'s host was created with (None before its first request)."""
        host = self._hosts.get(_host_key(url))
        return None if host is None else host.limit

    def _host(self, url: str, limit: RateLimit) -> _Host:
        key = _host_key(url)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(key, limit)
        return host

    def _backoff(self, attempt: int) -> float:
        step = min(self.backoff_s * (1 << min(attempt, 30)), _MAX_BACKOFF_S)
        return step / 2 + random.uniform(0, step / 2)

    async def get(
        self,
        url: str,
        params: Mapping[str, str | int],
        *,
        weight: int,
        limit: RateLimit,
        headers: Mapping[str, str] | None = None,
    ) -> RestReply:
        """GET ``url`` with ``params`` (in this order), counting ``weight`` against the host's budget. ``headers``
        (an API key) are sent and never logged nor put in errors; every header value counts as a secret. Credentials
        in ``url`` are sent as basic auth, never as part of a URL that is logged."""
        send = dict(headers) if headers else None
        host = self._host(url, limit)
        if weight > host.limit.weight:
            raise ValueError(f"request weight {weight} exceeds the host's whole budget {host.limit}")
        url, auth, in_url = _without_credentials(url)
        # longest first, so a secret that contains another is blanked whole
        secrets = tuple(sorted({v for v in (*(send or {}).values(), *in_url) if v}, key=len, reverse=True))
        path = urlsplit(url).path or "/"
        query = urlencode([(k, str(v)) for k, v in params.items()])
        request = f"GET {path}?{query}" if query else f"GET {path}"
        target = f"{url}?{query}" if query else url
        stats = self.stats
        attempt = 0
        while True:
            entry = await host.acquire(weight, stats)
            stats.requests += 1
            try:
                async with asyncio.timeout(self.deadline_s):
                    response, body = await self._fetch(target, send, auth, path)
            except RestError:
                host.answered(entry, httpx.Headers(), counted=True)  # an oversized reply: answered, and fatal
                raise
            except (httpx.TransportError, TimeoutError) as exc:
                host.answered(entry, httpx.Headers(), counted=False)
                if attempt >= self.max_retries:
                    what = f"no complete reply within {self.deadline_s:g} s" if isinstance(exc, TimeoutError) else exc
                    message = _blank(f"transport error: {type(exc).__name__}: {what}", secrets)
                    raise RestError(0, message, path) from exc
                delay = self._backoff(attempt)
                log.warning("GET %s: %s; retrying in %.2fs", path, type(exc).__name__, delay)
                await _sleep(delay, stats)
                attempt += 1
                stats.retries += 1
                continue
            recv_ns = time.time_ns()
            status = response.status_code
            headers = response.headers
            throttled = status in (429, 418)
            host.answered(entry, headers, counted=not throttled and status < 500)
            if throttled:
                stats.throttled += 1
                retry_after = _retry_after(headers)
                pause = retry_after if retry_after is not None else self._backoff(attempt)
                host.pause(pause)
                message, code = _error_message(body, secrets)
                if pause > self.max_wait_s:
                    raise RestError(status, f"{message} (Retry-After {pause:.0f}s, not waiting)", path, code=code)
                if attempt >= self.max_retries:
                    raise RestError(status, message, path, code=code)
                log.warning("GET %s: HTTP %d; pausing %s for %.2fs", path, status, host.key, pause)
                attempt += 1
                stats.retries += 1
                continue
            if status >= 500:
                message, code = _error_message(body, secrets)
                if attempt >= self.max_retries:
                    raise RestError(status, message, path, code=code)
                delay = self._backoff(attempt)
                log.warning("GET %s: HTTP %d; retrying in %.2fs", path, status, delay)
                await _sleep(delay, stats)
                attempt += 1
                stats.retries += 1
                continue
            if status >= 400:
                message, code = _error_message(body, secrets)
                raise RestError(status, message, path, code=code)
            return RestReply(status, body, recv_ns, request)

    async def _fetch(
        self, target: str, headers: dict[str, str] | None, auth: httpx.BasicAuth | None, path: str
    ) -> tuple[httpx.Response, bytes]:
        """The response and its body, read in chunks so that one larger than ``max_body_bytes`` is cut off."""
        how: httpx.BasicAuth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT if auth is None else auth
        async with self._http.stream("GET", target, headers=headers, auth=how) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                self.stats.bytes += len(chunk)
                if size > self.max_body_bytes:
                    raise RestError(
                        response.status_code, f"reply larger than {self.max_body_bytes} bytes, not read further", path
                    )
                chunks.append(chunk)
        return response, b"".join(chunks)


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"
