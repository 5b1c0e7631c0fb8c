"""The registry, endpoints and connection parameters of every exchange."""

from __future__ import annotations

import orjson
import pytest

from mdplatform.exchanges import (
    EXCHANGES,
    BinanceExchange,
    KeepAlive,
    OkxExchange,
    Subscription,
    capabilities,
    get_exchange,
)

#: every registry id: the ten exchanges and their markets with their own endpoints
IDS = [
    "binance",
    "binance-coinm",
    "binance-usdm",
    "bitfinex",
    "bybit",
    "bybit-linear",
    "coinbase",
    "gateio",
    "gateio-futures",
    "htx",
    "htx-coinm",
    "htx-swap",
    "kraken",
    "kucoin",
    "mexc",
    "okx",
]


def test_registry_ids_and_classes() -> None:
    assert sorted(EXCHANGES) == IDS
    for xid, x in EXCHANGES.items():
        assert x.id == xid
        assert get_exchange(xid) is x
    markets = {xid: x.market for xid, x in EXCHANGES.items() if isinstance(x, BinanceExchange)}
    assert markets == {"binance": "spot", "binance-usdm": "usdm", "binance-coinm": "coinm"}
    assert isinstance(EXCHANGES["okx"], OkxExchange)
    with pytest.raises(TypeError):
        EXCHANGES["x"] = EXCHANGES["okx"]  # type: ignore[index]


def test_unknown_exchange_lists_known_ids() -> None:
    with pytest.raises(KeyError, match=f"unknown exchange 'nope'; known: {', '.join(IDS)}\"$"):
        get_exchange("nope")


@pytest.mark.parametrize(
    ("xid", "ws", "rest"),
    [
        ("binance", "wss://stream.binance.com:9443", "https://api.binance.com/api/v3/depth"),
        ("binance-usdm", "wss://fstream.binance.com", "https://fapi.binance.com/fapi/v1/depth"),
        ("binance-coinm", "wss://dstream.binance.com", "https://dapi.binance.com/dapi/v1/depth"),
        ("okx", "wss://ws.okx.com:8443/ws/v5/public", None),
    ],
)
def test_endpoints(xid: str, ws: str, rest: str | None) -> None:
    x = get_exchange(xid)
    assert x.ws_url == ws
    assert x.rest_url == rest


def test_keepalive() -> None:
    for xid in ("binance", "binance-usdm", "binance-coinm"):
        ka = get_exchange(xid).keepalive
        assert ka.client_ping is None
        assert ka.idle_timeout_s == 60
    ka = get_exchange("okx").keepalive
    assert ka == KeepAlive(client_ping="ping", interval_s=20.0, idle_timeout_s=35.0, connects_per_s=3, connect_burst=3)
    assert ka.idle_timeout_s > 30 > ka.interval_s


def test_capabilities_table() -> None:
    table = capabilities()
    assert table.get_column("id").to_list() == list(EXCHANGES)
    rows = {r["id"]: r for r in table.to_dicts()}
    assert rows["binance"]["channels"] == ["aggTrade", "bookTicker", "depth", "trade"]
    assert rows["binance"]["trade_channels"] == ["aggTrade", "trade"]
    assert rows["okx"]["trade_channels"] == ["trades"]
    assert rows["binance-usdm"]["book_sync"] == "rest-snapshot"
    assert rows["okx"]["channels"] == ["books", "books5", "tickers", "trades"]
    assert rows["okx"]["book_sync"] == "ws-snapshot"
    assert rows["okx"]["checksum"] is True
    assert rows["okx"]["rest_url"] is None


def test_binance_urls_are_built_from_the_given_base() -> None:
    x = get_exchange("binance-usdm")
    subs = [
        Subscription("trade", "BTCUSDT"),
        Subscription("aggTrade", "btcusdt"),
        Subscription("depth", "BTCUSDT"),
        Subscription("bookTicker", "ETHUSDT"),
    ]
    url = x.connect_url(subs, "ws://127.0.0.1:8765")
    assert url == (
        "ws://127.0.0.1:8765/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@depth@100ms/ethusdt@bookTicker"
    )
    assert x.connect_url(subs[:1], "ws://127.0.0.1:8765/") == "ws://127.0.0.1:8765/stream?streams=btcusdt@trade"
    assert x.subscribe_messages(subs) == []
    with pytest.raises(ValueError, match="unsupported channel 'kline_1m'"):
        x.connect_url([Subscription("kline_1m", "BTCUSDT")], x.ws_url)
    session = x.new_session(subs, "http://127.0.0.1:8766/fapi/v1/depth")
    assert session.sync_state() == {"BTCUSDT": "buffering"}


def test_binance_subscribe_request_is_the_documented_form() -> None:
    x = get_exchange("binance")
    assert isinstance(x, BinanceExchange)
    subs = [Subscription("aggTrade", "BTCUSDT"), Subscription("depth", "BTCUSDT")]
    assert orjson.loads(x.subscribe_request(subs, 7)) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@aggTrade", "btcusdt@depth@100ms"],
        "id": 7,
    }
    assert orjson.loads(x.subscribe_request(subs, 8, unsubscribe=True))["method"] == "UNSUBSCRIBE"


def test_okx_connects_to_the_given_base_and_batches_args() -> None:
    x = get_exchange("okx")
    subs = [Subscription("trades", f"INST-{i}") for i in range(250)]
    assert x.connect_url(subs, "ws://127.0.0.1:8765/ws/v5/public") == "ws://127.0.0.1:8765/ws/v5/public"
    messages = [orjson.loads(m) for m in x.subscribe_messages(subs)]
    assert [len(m["args"]) for m in messages] == [100, 100, 50]
    assert all(m["op"] == "subscribe" for m in messages)
    assert [a["instId"] for m in messages for a in m["args"]] == [s.symbol for s in subs]


@pytest.mark.parametrize(
    ("xid", "symbol", "expected"),
    [
        ("binance", "BTCUSDT", "BTC-USDT"),
        ("binance", "ethbtc", "ETH-BTC"),
        ("binance", "BTCFDUSD", "BTC-FDUSD"),
        ("binance", "BNBBUSD", "BNB-BUSD"),
        ("binance", "USDTTRY", "USDT-TRY"),
        ("binance", "WBETHETH", "WBETH-ETH"),
        ("binance", "NKNUSDT", "NKN-USDT"),
        ("binance", "RUNEEUR", "RUNE-EUR"),
        ("binance", "UNKNOWNPAIR", "UNKNOWNPAIR"),
        ("binance-usdm", "BTCUSDT", "BTC-USDT-PERP"),
        ("binance-usdm", "ETHUSDC", "ETH-USDC-PERP"),
        ("binance-usdm", "BTCUSDT_240927", "BTC-USDT-240927"),
        ("binance-coinm", "BTCUSD_PERP", "BTC-USD-PERP"),
        ("binance-coinm", "BTCUSD_240927", "BTC-USD-240927"),
        ("okx", "BTC-USDT", "BTC-USDT"),
        ("okx", "UNI-USD-SWAP", "UNI-USD-PERP"),
        ("okx", "BTC-USD-220527", "BTC-USD-220527"),
    ],
)
def test_normalize_symbol(xid: str, symbol: str, expected: str) -> None:
    assert get_exchange(xid).normalize_symbol(symbol) == expected


def test_endpoint_overrides_given_as_bare_host_get_the_exchange_paths() -> None:
    from mdplatform.exchanges import Subscription, get_exchange

    spot, usdm, okx = get_exchange("binance"), get_exchange("binance-usdm"), get_exchange("okx")
    subs = [Subscription("trade", "BTCUSDT"), Subscription("depth", "BTCUSDT")]
    want = "ws://127.0.0.1:9001/stream?streams=btcusdt@trade/btcusdt@depth@100ms"
    for base in ("ws://127.0.0.1:9001", "ws://127.0.0.1:9001/", "ws://127.0.0.1:9001/stream"):
        assert spot.connect_url(subs, base) == want
    session = spot.new_session(subs, "http://127.0.0.1:9001")
    action = session.on_frame("depth", "BTCUSDT", '{"stream":"btcusdt@depth@100ms","data":{"U":1,"u":2,"b":[],"a":[]}}')
    assert action is not None and action.fetch_snapshot == (
        "BTCUSDT",
        "http://127.0.0.1:9001/api/v3/depth?symbol=BTCUSDT&limit=1000",
    )
    assert usdm.new_session(subs, "http://h:1").on_frame(  # type: ignore[union-attr]
        "depth", "BTCUSDT", '{"stream":"btcusdt@depth@100ms","data":{"U":1,"u":2,"pu":0,"b":[],"a":[]}}'
    ).fetch_snapshot == ("BTCUSDT", "http://h:1/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    assert okx.connect_url([], "ws://127.0.0.1:9001") == "ws://127.0.0.1:9001/ws/v5/public"
    assert okx.connect_url([], "ws://127.0.0.1:9001/ws/v5/business") == "ws://127.0.0.1:9001/ws/v5/business"
