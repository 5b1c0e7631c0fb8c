"""The replay's REST trade history endpoints and their parameters (Binance historicalTrades/aggTrades, OKX
history-trades), the REST rate limit's answers, and ``mdp replay --rest-weight-limit``."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from _replay_util import run

from mdplatform.capture import merge_captures
from mdplatform.history import RateLimit
from mdplatform.replay import ReplayServer

SPOT = ("binance-hftbacktest/spot/btcusdt_20240808.gz", "binance-hftbacktest/spot/btcusdt_20240809.gz")
USDM = ("binance-hftbacktest/usdm/btcusdt_20240808.gz",)
FUTURES_AGG = ("cryptofeed-samples/BINANCE_FUTURES.ws.1.0.gz",)
OKX = ("cryptofeed-samples/OKX.ws.1.0.gz",)

Get = Callable[..., Any]


@cache
def _events(files: tuple[str, ...], marker: str) -> tuple[dict[str, Any], ...]:
    """The recorded trade events (``marker``: "@trade", "@aggTrade") or OKX trades items of BTC-USDT, by id."""
    out: dict[int, dict[str, Any]] = {}
    for frame in merge_captures(list(files)):
        text = frame.frame
        if marker == "okx" and text.startswith('{"arg":{"channel":"trades","instId":"BTC-USDT"}') and '"data"' in text:
            for item in orjson.loads(text)["data"]:
                out.setdefault(int(item["tradeId"]), item)
        elif marker != "okx" and text.startswith('{"stream":"') and marker in text[:40]:
            data = orjson.loads(text)["data"]
            out.setdefault(data["t"] if marker == "@trade" else data["a"], data)
    return tuple(out[k] for k in sorted(out))


def events(root: Path, names: tuple[str, ...], marker: str) -> tuple[dict[str, Any], ...]:
    return _events(tuple(str(root / n) for n in names), marker)


def serve(root: Path, names: tuple[str, ...], scenario: Callable[[ReplayServer, Get], Any], **kwargs: Any) -> None:
    async def main() -> None:
        async with (
            ReplayServer([root / n for n in names], verbose=False, **kwargs) as server,
            httpx.AsyncClient(base_url=server.rest_base) as http,
        ):

            async def get(path: str, **params: object) -> httpx.Response:
                return await http.get(path, params={k: str(v) for k, v in params.items()})

            await scenario(server, get)

    run(main)


def test_historical_trades_parameters(shared_data: Path) -> None:
    trades = events(shared_data, SPOT, "@trade")
    ids = [t["t"] for t in trades]

    async def scenario(server: ReplayServer, get: Get) -> None:
        path = "/api/v3/historicalTrades"
        r = await get(path, symbol="BTCUSDT")  # the most recent, 500 by default
        assert r.status_code == 200 and [t["id"] for t in r.json()] == ids[-500:]
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "25"
        r = await get(path, symbol="btcusdt", fromId=ids[100], limit=3)
        body = r.json()
        assert [t["id"] for t in body] == ids[100:103]
        first, event = body[0], trades[100]
        assert list(first) == ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"]
        assert (first["price"], first["qty"], first["time"], first["isBuyerMaker"], first["isBestMatch"]) == (
            event["p"],
            event["q"],
            event["T"],
            event["m"],
            event["M"],
        )
        assert Decimal(first["quoteQty"]) == Decimal(event["p"]) * Decimal(event["q"])
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "50"
        # limit at most 1000; fromId before the recording starts at its first trade, after it gives nothing
        assert len((await get(path, symbol="BTCUSDT", fromId=ids[0], limit=5000)).json()) == 1000
        assert [t["id"] for t in (await get(path, symbol="BTCUSDT", fromId=0, limit=2)).json()] == ids[:2]
        assert (await get(path, symbol="BTCUSDT", fromId=ids[-1] + 1)).json() == []
        # errors in Binance's words
        r = await get(path, symbol="BTCUSDT", limit="ten")
        assert r.status_code == 400 and r.json()["code"] == -1100 and "'limit'" in r.json()["msg"]
        assert (await get(path, symbol="BTCUSDT", fromId=-5)).json()["code"] == -1100
        assert (await get(path)).json()["code"] == -1102
        r = await get(path, symbol="ETHUSDT")
        assert (r.status_code, r.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
        r = await get("/api/v3/aggTrades", symbol="BTCUSDT", startTime=trades[0]["T"], limit=1)
        assert r.status_code == 400 and "has no aggTrade frames of BTCUSDT" in r.json()["msg"]
        assert (await get("/fapi/v1/historicalTrades", symbol="BTCUSDT")).status_code == 404
        # the REST budget counts the served endpoints only: 404s are neither counted nor limited
        assert server.rest_requests == 10 and server.rest_throttled == 0

    serve(shared_data, SPOT, scenario)


def test_futures_historical_trades_layout_and_limit(shared_data: Path) -> None:
    trades = events(shared_data, USDM, "@trade")

    async def scenario(server: ReplayServer, get: Get) -> None:
        r = await get("/fapi/v1/historicalTrades", symbol="BTCUSDT", fromId=trades[0]["t"], limit=1000)
        body = r.json()
        assert len(body) == 500  # USD-M pages hold at most 500
        assert list(body[0]) == ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker"]
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        assert len((await get("/fapi/v1/historicalTrades", symbol="BTCUSDT")).json()) == 100  # default

    serve(shared_data, USDM, scenario)


def test_agg_trades_parameters(shared_data: Path) -> None:
    agg = [a for a in events(shared_data, FUTURES_AGG, "@aggTrade") if a["s"] == "SUSHIUSDT"]
    ids = [a["a"] for a in agg]
    keys = ["a", "p", "q", "f", "l", "T", "m"]

    async def scenario(server: ReplayServer, get: Get) -> None:
        path = "/fapi/v1/aggTrades"
        r = await get(path, symbol="SUSHIUSDT")
        assert r.json() == [{k: a[k] for k in keys} for a in agg]  # all 40 (fewer than the default 500)
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        # startTime: from the first aggregate at/after it
        for start in (agg[5]["T"] - 1, agg[5]["T"], agg[5]["T"] + 1):
            first = next(a["a"] for a in agg if a["T"] >= start)
            assert [a["a"] for a in (await get(path, symbol="SUSHIUSDT", startTime=start, limit=1)).json()] == [first]
        got = (await get(path, symbol="SUSHIUSDT", startTime=agg[5]["T"], endTime=agg[10]["T"])).json()
        assert [a["a"] for a in got] == [a["a"] for a in agg if agg[5]["T"] <= a["T"] <= agg[10]["T"]]
        got = (await get(path, symbol="SUSHIUSDT", endTime=agg[10]["T"], limit=3)).json()
        assert [a["a"] for a in got] == [a["a"] for a in agg if a["T"] <= agg[10]["T"]][-3:]
        got = (await get(path, symbol="SUSHIUSDT", fromId=ids[30], limit=4)).json()
        assert [a["a"] for a in got] == ids[30:34]
        r = await get(path, symbol="SUSHIUSDT", startTime=agg[0]["T"], endTime=agg[0]["T"] + 3_600_000)
        assert (r.status_code, r.json()["code"]) == (400, -1127)
        assert (await get(path, symbol="SUSHIUSDT", startTime="soon")).json()["code"] == -1100
        # the historicalTrades of a capture without trade frames: an error saying so
        r = await get("/fapi/v1/historicalTrades", symbol="SUSHIUSDT")
        assert r.status_code == 400 and "no trade frames of SUSHIUSDT" in r.json()["msg"]

    serve(shared_data, FUTURES_AGG, scenario)


def test_rebased_history_shifts_times_and_time_parameters(shared_data: Path) -> None:
    agg = [a for a in events(shared_data, FUTURES_AGG, "@aggTrade") if a["s"] == "CTKUSDT"]

    async def scenario(server: ReplayServer, get: Get) -> None:
        shift = server.shift_ns // 1_000_000
        assert shift > 0 and shift % 60_000 == 0
        got = (await get("/fapi/v1/aggTrades", symbol="CTKUSDT", startTime=agg[3]["T"] + shift, limit=2)).json()
        assert [(a["a"], a["T"]) for a in got] == [(a["a"], a["T"] + shift) for a in agg[3:5]]

    serve(shared_data, FUTURES_AGG, scenario, rebase=True)


def test_binance_rate_limit_answers(shared_data: Path) -> None:
    async def scenario(server: ReplayServer, get: Get) -> None:
        path = "/api/v3/historicalTrades"
        assert (await get(path, symbol="BTCUSDT", limit=1)).headers["X-MBX-USED-WEIGHT-1M"] == "25"
        assert (await get("/api/v3/depth", symbol="BTCUSDT", limit=1000)).status_code == 200  # weight 50
        r = await get(path, symbol="BTCUSDT", limit=1)
        assert r.status_code == 429
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "75"
        assert 59 <= int(r.headers["Retry-After"]) <= 60
        assert r.json() == {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 90 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
        }
        assert (server.rest_requests, server.rest_throttled) == (3, 1)

    serve(shared_data, SPOT, scenario, rest_limit=RateLimit(90, 60.0))


def test_okx_history_trades_parameters(shared_data: Path) -> None:
    trades = events(shared_data, OKX, "okx")
    ids = [int(t["tradeId"]) for t in trades]
    assert len(ids) == 69

    async def scenario(server: ReplayServer, get: Get) -> None:
        path = "/api/v5/market/history-trades"
        r = await get(path, instId="BTC-USDT")
        body = r.json()
        assert (body["code"], body["msg"]) == ("0", "")
        assert body["data"] == list(reversed(trades))  # newest first, as recorded
        assert not any(h.lower().startswith("x-mbx") for h in r.headers)

        def tids(r: httpx.Response) -> list[int]:
            return [int(t["tradeId"]) for t in r.json()["data"]]

        assert tids(await get(path, instId="BTC-USDT", after=ids[20], limit=5)) == ids[15:20][::-1]
        assert tids(await get(path, instId="BTC-USDT", type=1, before=ids[60])) == ids[61:][::-1]
        assert tids(await get(path, instId="BTC-USDT", after=ids[40], before=ids[30])) == ids[31:40][::-1]
        assert tids(await get(path, instId="BTC-USDT", limit=500)) == ids[::-1]  # at most 100
        ts = int(trades[50]["ts"])
        older = [int(t["tradeId"]) for t in trades if int(t["ts"]) < ts]
        assert tids(await get(path, instId="BTC-USDT", type=2, after=ts, limit=100)) == older[::-1]
        for params, code in (
            ({"instId": "BTC-USDT", "type": 2, "before": ts}, "51000"),
            ({"instId": "BTC-USDT", "type": 3}, "51000"),
            ({"instId": "BTC-USDT", "limit": "many"}, "51000"),
            ({}, "50014"),
            ({"instId": "ETH-USDT"}, "51001"),
        ):
            r = await get(path, **params)
            assert (r.status_code, r.json()["code"], r.json()["data"]) == (400, code, [])

    serve(shared_data, OKX, scenario)


def test_okx_rate_limit_and_rebase(shared_data: Path) -> None:
    trades = events(shared_data, OKX, "okx")

    async def scenario(server: ReplayServer, get: Get) -> None:
        shift = server.shift_ns // 1_000_000
        path = "/api/v5/market/history-trades"
        ts = int(trades[50]["ts"]) + shift
        data = (await get(path, instId="BTC-USDT", type=2, after=ts, limit=2)).json()["data"]
        assert [d["ts"] for d in data] == [str(int(t["ts"]) + shift) for t in trades[48:50][::-1]]
        assert (await get(path, instId="BTC-USDT")).status_code == 200
        r = await get(path, instId="BTC-USDT")
        assert (r.status_code, r.content) == (429, b'{"msg":"Too Many Requests","code":"50011"}')
        assert "Retry-After" not in r.headers
        assert (server.rest_requests, server.rest_throttled) == (3, 1)

    serve(shared_data, OKX, scenario, rebase=True, rest_limit=RateLimit(2, 60.0))


@pytest.mark.parametrize(
    ("args", "limit"), [((), "20/2"), (("--rest-weight-limit", "1", "--rest-window", "30"), "1/30")]
)
def test_mdp_replay_rest_limit_options(shared_data: Path, args: tuple[str, ...], limit: str) -> None:
    cmd = [sys.executable, "-m", "mdplatform.cli", "replay", "--capture", str(shared_data / OKX[0]), "--speed", "0"]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: dict[str, str] = {}
        while "REPLAY_SHIFT_NS" not in lines:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            key, _, value = line.strip().partition("=")
            lines[key] = value
        assert lines["REPLAY_REST_LIMIT"] == limit
        assert lines["REPLAY_REST_BASE"] == f"http://127.0.0.1:{lines['REPLAY_PORT']}"
        url = lines["REPLAY_REST_BASE"] + "/api/v5/market/history-trades?instId=BTC-USDT"
        statuses = [httpx.get(url).status_code for _ in range(2)]
        assert statuses == ([200, 200] if limit == "20/2" else [200, 429])
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert f"REPLAY_REST_THROTTLED={statuses.count(429)}" in out
        assert out.strip().splitlines()[-1] == "REPLAY_SENT=0"
    finally:
        if proc.poll() is None:
            proc.kill()
