"""The rate-limited REST client against the replay's REST rate limit: Retry-After pauses the whole host, the number
of 429s stays bounded, a 418 ban is waited out, request weights and the used-weight header keep a client that
knows the budget from ever being refused, and errors carry the exchange's message."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from _history_util import FUTURES_AGG, MS, OKX, USDM, fetch_all, id_before, paths, recorded, run

from mdplatform.exchanges.binance._history import BINANCE_REST, BinanceTradeHistory
from mdplatform.exchanges.okx._history import OkxTradeHistory
from mdplatform.history import RateLimit, RestClient, RestError, RestStats
from mdplatform.history._rest import _Host, used_weight_header
from mdplatform.replay import ReplayServer

SPEC = BINANCE_REST["usdm"]


@dataclass
class Wire:
    """What went over the wire, seen from the client: request send times, answers with their headers."""

    sent: list[tuple[float, str]] = field(default_factory=list)
    answers: list[tuple[float, int, httpx.Headers]] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        async def on_request(request: httpx.Request) -> None:
            self.sent.append((time.monotonic(), request.url.path))

        async def on_response(response: httpx.Response) -> None:
            self.answers.append((time.monotonic(), response.status_code, response.headers))

        return httpx.AsyncClient(timeout=10, event_hooks={"request": [on_request], "response": [on_response]})

    def statuses(self) -> list[int]:
        return [status for _, status, _ in self.answers]


def test_used_weight_header_names() -> None:
    assert used_weight_header(60) == "x-mbx-used-weight-1m"
    assert used_weight_header(1) == "x-mbx-used-weight-1s"
    assert used_weight_header(2) == "x-mbx-used-weight-2s"
    assert used_weight_header(3600) == "x-mbx-used-weight-1h"
    assert used_weight_header(86_400) == "x-mbx-used-weight-1d"


def test_the_documented_budgets() -> None:
    assert BINANCE_REST["spot"].rate_limit == RateLimit(6000, 60.0)
    assert BINANCE_REST["usdm"].rate_limit == RateLimit(2400, 60.0)
    assert BINANCE_REST["coinm"].rate_limit == RateLimit(2400, 60.0)
    assert OkxTradeHistory().rate_limit == RateLimit(20, 2.0)
    weights = {m: (s.trades_weight, s.trades_max, s.agg_weight, s.agg_max) for m, s in BINANCE_REST.items()}
    assert weights == {"spot": (25, 1000, 4, 1000), "usdm": (20, 500, 20, 1000), "coinm": (20, 500, 20, 1000)}
    with pytest.raises(ValueError):
        BinanceTradeHistory("usdm", "trade", limit=1000)  # USD-M historicalTrades pages hold at most 500
    with pytest.raises(ValueError):
        RateLimit(0, 1.0)


def test_resync_moves_the_window_to_the_servers_count() -> None:
    async def scenario() -> None:
        host = _Host("http://x:80", RateLimit(100, 60.0))
        stats = RestStats()
        entries = [await host.acquire(25, stats) for _ in range(3)]
        for entry in entries[:2]:
            host.answered(entry, httpx.Headers({"x-mbx-used-weight-1m": "90"}), counted=True)
        # the server counts 90 (another process on the same IP used weight too), one request is still in flight
        assert host._expire(time.monotonic()) == 90 + 25
        host.answered(entries[2], httpx.Headers({"x-mbx-used-weight-1m": "40"}), counted=True)
        assert host._expire(time.monotonic()) == 40  # the server says less: the oldest weight goes first
        assert stats.waited_s == 0

    run(scenario)


def test_retry_after_pauses_the_whole_host_and_every_trade_still_arrives(shared_data: Path) -> None:
    """Two fetches at once on a replay allowing 3 requests a second, a client that believes the real budget: the
    429s pause both, nothing is sent during a Retry-After period, and both fetches return every trade."""
    history = BinanceTradeHistory("usdm", "trade")
    trades = recorded(shared_data, USDM, "trade")["BTCUSDT"]
    wire = Wire()

    async def one(client: RestClient, base: str, first: int, last: int) -> list[int]:
        a, b = trades[first], trades[last]
        pages = await fetch_all(
            history,
            client,
            "BTCUSDT",
            a.time_ms * MS,
            b.time_ms * MS,
            base_url=base,
            after_id=id_before(trades, a.time_ms),
        )
        assert pages[-1].proven == (a.time_ms * MS, b.time_ms * MS)
        return [int(str(r["id"])) for p in pages for r in p.records]

    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, USDM), rest_limit=RateLimit(60, 1.0), verbose=False) as server,
            RestClient(wire.client()) as client,
        ):
            got = await asyncio.gather(
                one(client, server.rest_base, 1000, 2400), one(client, server.rest_base, 9000, 10_400)
            )
            for ids, (first, last) in zip(got, ((1000, 2400), (9000, 10_400)), strict=True):
                expected = [t.id for t in trades if trades[first].time_ms <= t.time_ms < trades[last].time_ms]
                assert ids == expected
            served = wire.statuses().count(200)
            throttled = wire.statuses().count(429)
            assert wire.statuses().count(418) == 0  # never banned
            assert client.stats.throttled == throttled == server.rest_throttled >= 1
            assert served == server.rest_requests - server.rest_throttled >= 6
            # bounded: a 429 is followed by a pause that lets the next window's requests through
            assert throttled <= math.ceil(served / 3) + 2
            assert client.stats.retries == throttled and client.stats.requests == served + throttled
            for t, status, headers in wire.answers:
                if status != 429:
                    continue
                assert headers["Retry-After"] == "1" and int(headers["X-MBX-USED-WEIGHT-1S"]) <= 60
                # nothing left the client during the pause (both fetches wait), but for a request admitted before
                # the 429 arrived and already on its way
                assert not [s for s, _ in wire.sent if t + 0.05 < s < t + 1.0 - 0.02]
            assert client.stats.waited_s >= 0.9  # concurrent requests wait out one pause together

    run(scenario)


def test_a_client_that_knows_the_budget_is_never_refused(shared_data: Path) -> None:
    """The limiter, created with the replay's own budget, spaces the requests by their documented weight."""
    history = BinanceTradeHistory("usdm", "trade", limit=250)
    trades = recorded(shared_data, USDM, "trade")["BTCUSDT"]
    a, b = trades[3000], trades[5200]
    budget = RateLimit(100, 1.0)
    wire = Wire()

    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, USDM), rest_limit=budget, verbose=False) as server,
            RestClient(wire.client()) as client,
        ):
            base = server.rest_base
            # the first request to a host creates its limiter with that request's RateLimit
            reply = await client.get(
                f"{base}{SPEC.trades_path}", {"symbol": "BTCUSDT", "limit": 1}, weight=20, limit=budget
            )
            assert reply.status == 200 and reply.request == "GET /fapi/v1/historicalTrades?symbol=BTCUSDT&limit=1"
            assert client.host_limit(base + "/anything") == budget
            pages = await fetch_all(
                history,
                client,
                "BTCUSDT",
                a.time_ms * MS,
                b.time_ms * MS,
                base_url=base,
                after_id=id_before(trades, a.time_ms),
            )
            assert [r["id"] for p in pages for r in p.records] == [
                t.id for t in trades if a.time_ms <= t.time_ms < b.time_ms
            ]
            assert len(pages) == 9
            assert server.rest_throttled == client.stats.throttled == 0
            # 10 requests of weight 20 at 100 per second: any 6 in a row (weight 120) span at least the 1 s window.
            # Asserted on the send times, not on the wall time of the whole fetch: a loaded machine makes requests
            # slower (less waiting needed), never closer together (the 0.05 s is the send hook's own jitter).
            sent = [t for t, _ in wire.sent]
            assert len(sent) == 10
            assert min(sent[i + 5] - sent[i] for i in range(len(sent) - 5)) >= 0.95
            used = [int(h["X-MBX-USED-WEIGHT-1S"]) for _, _, h in wire.answers]
            assert max(used) <= 100 and used[:5] == [20, 40, 60, 80, 100]

    run(scenario)


def test_the_used_weight_header_resyncs_the_host(shared_data: Path) -> None:
    """Another process on the same IP used most of the budget: the first answer's used-weight header makes the
    client wait for the window instead of running into a 429."""
    budget = RateLimit(100, 1.0)
    wire = Wire()

    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, USDM), rest_limit=budget, verbose=False) as server,
            httpx.AsyncClient() as other,
            RestClient(wire.client()) as client,
        ):
            url = f"{server.rest_base}{SPEC.trades_path}"
            for _ in range(4):
                assert (await other.get(url, params={"symbol": "BTCUSDT", "limit": 5})).status_code == 200
            started = time.monotonic()
            await client.get(url, {"symbol": "BTCUSDT", "limit": 5}, weight=20, limit=budget)
            await client.get(url, {"symbol": "BTCUSDT", "limit": 5}, weight=20, limit=budget)
            assert time.monotonic() - started >= 0.8
            assert wire.statuses() == [200, 200] and client.stats.throttled == server.rest_throttled == 0
            assert [h["X-MBX-USED-WEIGHT-1S"] for _, _, h in wire.answers] == ["100", "20"]

    run(scenario)


def test_a_418_ban_is_waited_out(shared_data: Path) -> None:
    """A client that keeps sending after a 429 gets the IP banned (418, Retry-After: the ban's length); a
    RestClient on the same IP waits the ban out and still gets its trades."""
    history = BinanceTradeHistory("usdm", "trade", limit=100)
    trades = recorded(shared_data, USDM, "trade")["BTCUSDT"]
    a, b = trades[500], trades[650]
    wire = Wire()

    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, USDM), rest_limit=RateLimit(40, 1.0), verbose=False) as server,
            httpx.AsyncClient() as rude,
            RestClient(wire.client()) as client,
        ):
            url = f"{server.rest_base}{SPEC.trades_path}"
            answers = [await rude.get(url, params={"symbol": "BTCUSDT", "limit": 5}) for _ in range(7)]
            assert [r.status_code for r in answers] == [200, 200, 429, 429, 429, 429, 418]
            banned = answers[-1]
            assert banned.headers["Retry-After"] == "2"
            assert banned.json()["code"] == -1003 and "IP banned until" in banned.json()["msg"]
            assert answers[2].json()["msg"].startswith("Too much request weight used; current limit is 40 ")
            started = time.monotonic()
            pages = await fetch_all(
                history,
                client,
                "BTCUSDT",
                a.time_ms * MS,
                b.time_ms * MS,
                base_url=server.rest_base,
                after_id=id_before(trades, a.time_ms),
            )
            assert time.monotonic() - started >= 1.5
            assert [r["id"] for p in pages for r in p.records] == [
                t.id for t in trades if a.time_ms <= t.time_ms < b.time_ms
            ]
            assert wire.statuses()[0] == 418 and client.stats.throttled >= 1
            assert 418 not in wire.statuses()[1:]  # waited out, not extended

    run(scenario)


def test_okx_429_without_retry_after_backs_off(shared_data: Path) -> None:
    history = OkxTradeHistory(limit=10)
    trades = recorded(shared_data, OKX, "trades")["BTC-USDT"]
    start, end = trades[0].time_ms * MS, (trades[-1].time_ms + 1) * MS
    wire = Wire()

    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, OKX), rest_limit=RateLimit(3, 1.0), verbose=False) as server,
            RestClient(wire.client(), backoff_s=0.2) as client,
        ):
            pages = await fetch_all(history, client, "BTC-USDT", start, end, base_url=server.rest_base)
            assert sorted(int(str(r["tradeId"])) for p in pages for r in p.records) == [t.id for t in trades]
            refused = [(s, h) for _, s, h in wire.answers if s != 200]
            assert refused and all(s == 429 and "Retry-After" not in h for s, h in refused)
            assert client.stats.throttled == len(refused) == server.rest_throttled
            assert len(refused) <= 4 * len(pages)

    run(scenario)


def test_errors_carry_the_exchanges_message(shared_data: Path) -> None:
    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, FUTURES_AGG), verbose=False) as server,
            RestClient(max_retries=2, backoff_s=0.01) as client,
        ):
            base = server.rest_base
            with pytest.raises(RestError) as err:
                await client.get(f"{base}/fapi/v1/aggTrades", {"symbol": "NOPEUSDT"}, weight=20, limit=SPEC.rate_limit)
            assert (err.value.status, err.value.code, err.value.message) == (400, "-1121", "-1121 Invalid symbol.")
            assert "symbol=" not in str(err.value)  # never the query string
            assert client.stats.retries == 0
            # a 5xx is retried, then reported (this capture has no depth snapshot of SUSHIUSDT)
            with pytest.raises(RestError) as err:
                await client.get(f"{base}/fapi/v1/depth", {"symbol": "SUSHIUSDT"}, weight=10, limit=SPEC.rate_limit)
            assert err.value.status == 503 and "no snapshot of SUSHIUSDT" in err.value.message
            assert client.stats.retries == 2 and client.stats.requests == 4
            with pytest.raises(ValueError):
                await client.get(f"{base}/fapi/v1/depth", {}, weight=SPEC.rate_limit.weight + 1, limit=SPEC.rate_limit)
        # nothing listens: transport errors are retried, then reported with status 0
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with RestClient(max_retries=1, backoff_s=0.01) as client:
            with pytest.raises(RestError) as err:
                await client.get(f"http://127.0.0.1:{port}/x", {}, weight=1, limit=RateLimit(10, 1.0))
            assert err.value.status == 0 and client.stats.requests == 2

    run(scenario)


def test_a_binance_api_key_goes_in_its_header_and_nowhere_else(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MDP_BINANCE_API_KEY (futures historicalTrades may want one) is sent as X-MBX-APIKEY on every request, retries
    included, and appears in no request description or error."""
    key = "k3y-for-the-test"
    monkeypatch.setenv("MDP_BINANCE_API_KEY", key)
    history = BinanceTradeHistory("usdm", "trade", limit=250)
    trades = recorded(shared_data, USDM, "trade")["BTCUSDT"]
    a, b = trades[3000], trades[3600]
    sent: list[str | None] = []

    async def on_request(request: httpx.Request) -> None:
        sent.append(request.headers.get("X-MBX-APIKEY"))

    async def scenario() -> list[str]:
        http = httpx.AsyncClient(timeout=10, event_hooks={"request": [on_request]})
        # a budget the replay enforces and the client does not know: some requests are answered 429 and retried
        async with (
            ReplayServer(paths(shared_data, USDM), rest_limit=RateLimit(40, 1.0), verbose=False) as server,
            RestClient(http) as client,
        ):
            pages = await fetch_all(
                history, client, "BTCUSDT", a.time_ms * MS, b.time_ms * MS, base_url=server.rest_base,
                after_id=id_before(trades, a.time_ms),
            )  # fmt: skip
            assert client.stats.throttled >= 1
            with pytest.raises(RestError) as err:
                await client.get(
                    f"{server.rest_base}{SPEC.trades_path}", {"symbol": "NOPE"}, weight=20, limit=RateLimit(40, 1.0),
                    headers={"X-MBX-APIKEY": key},
                )  # fmt: skip
            assert key not in str(err.value)
            return [p.request for p in pages]

    requests = run(scenario)
    assert len(requests) >= 3 and not any(key in r for r in requests)
    assert len(sent) > len(requests) and set(sent) == {key}


def test_a_reply_larger_than_the_bound_fails_at_once_and_frees_its_weight() -> None:
    """A host answering 3 MB where a page is a few hundred kB: the body is cut off at ``max_body_bytes`` (not held
    whole in memory), the request fails without retries, and its weight leaves the in-flight count."""
    sent: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(48):
            yield b" " * (64 << 10)  # 3 MB in 64 kB chunks

    def huge(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, content=body())

    async def scenario() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(huge))
        async with RestClient(http, max_body_bytes=1 << 20) as client:
            url = "http://127.0.0.1:1/api/v3/historicalTrades"
            with pytest.raises(RestError) as info:
                await client.get(url, {"symbol": "BTCUSDT"}, weight=25, limit=RateLimit(6000, 60.0))
            assert str(info.value) == (
                "GET /api/v3/historicalTrades: HTTP 200: reply larger than 1048576 bytes, not read further"
            )
            assert client._hosts["http://127.0.0.1:1"].inflight == 0
            assert sent == ["/api/v3/historicalTrades"]  # not sent again
            assert client.stats.bytes == (1 << 20) + (64 << 10)  # the chunk that passed the bound, no further
        await http.aclose()

    run(scenario)
