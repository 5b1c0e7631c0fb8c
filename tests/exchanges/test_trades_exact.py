"""Exact trade normalization: decimals held exactly from the wire strings, Binance aggTrade rows, OKX "count",
and every way a price, size or id can be refused (with a reason, never rounded)."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from itertools import pairwise

import orjson
import polars as pl
import pytest
from _exchange_util import binance, is_snapshot

from mdplatform.exchanges import NORMALIZED_TRADES, OkxExchange, Trade, get_exchange
from mdplatform.exchanges._normalize import split_trades
from mdplatform.schemas import PRICE, REJECTS, TRADE_LINEAGE, TRADES

Lines = Callable[[str], tuple[tuple[int, str], ...]]
CfLines = Callable[[str], tuple[tuple[str, int, str], ...]]
ToRaw = Callable[..., pl.DataFrame]

#: a trade frame exactly as Binance spot sends it (the first trade of the spot BTCUSDT recording)
SPOT_TRADE = (
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,'
    '"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}'
)


def okx() -> OkxExchange:
    x = get_exchange("okx")
    assert isinstance(x, OkxExchange)
    return x


def test_output_layout_is_trades_then_lineage() -> None:
    assert list(NORMALIZED_TRADES) == [*TRADES, *TRADE_LINEAGE]
    assert NORMALIZED_TRADES["price"] == NORMALIZED_TRADES["size"] == PRICE == pl.Decimal(38, 12)


@pytest.mark.parametrize(
    ("name", "xid"),
    [("spot/btcusdt", "binance"), ("usdm/btcusdt", "binance-usdm"), ("cm/btcusd_perp", "binance-coinm")],
)
def test_every_recorded_trade_is_exact(hft: Lines, to_raw: ToRaw, name: str, xid: str) -> None:
    x = binance(xid)
    lines = [(ts, f) for ts, f in hft(name) if not is_snapshot(f) and x.route(f)[0] == "trade"]
    trades, rejects = x.normalize_trades_with_rejects(to_raw(x, lines))
    assert rejects.height == 0
    wire = [orjson.loads(f)["data"] for _, f in lines]
    assert trades.height == len(wire) > 1000
    prices = trades.get_column("price").to_list()
    sizes = trades.get_column("size").to_list()
    assert prices == [Decimal(d["p"]) for d in wire]
    assert sizes == [Decimal(d["q"]) for d in wire]
    exact_total = sum((Decimal(d["q"]) for d in wire), Decimal(0))
    assert trades.get_column("size").sum() == exact_total
    if name == "spot/btcusdt":
        assert trades.height == 19_904
        assert exact_total == Decimal("437.91552")
        # what the test guards against: the Float64 sum of the same strings is not the volume
        assert Decimal(sum(float(d["q"]) for d in wire)) != exact_total


def _agg_frames(cryptofeed: CfLines, sample: str) -> list[tuple[int, str]]:
    return [(ts, t) for kind, ts, t in cryptofeed(sample) if kind == "recv" and "@aggTrade" in t[:40]]


@pytest.mark.parametrize(
    ("sample", "xid", "symbols"),
    [
        ("BINANCE.ws.1.0.gz", "binance", {"NKNUSDT": (1, 0), "LRCBTC": (1, 0)}),
        (
            "BINANCE_FUTURES.ws.1.0.gz",
            "binance-usdm",
            # symbol -> (aggTrades, of which hold several fills)
            {"CTKUSDT": (38, 6), "AKROUSDT": (8, 6), "SUSHIUSDT": (40, 14), "KEEPUSDT": (5, 1)},
        ),
    ],
)
def test_real_agg_trades(
    cryptofeed: CfLines, to_raw: ToRaw, sample: str, xid: str, symbols: dict[str, tuple[int, int]]
) -> None:
    x = binance(xid)
    frames = _agg_frames(cryptofeed, sample)
    raw = to_raw(x, frames)
    assert raw.get_column("channel").unique().to_list() == ["aggTrade"]
    trades, rejects = x.normalize_trades_with_rejects(raw)
    assert rejects.height == 0
    assert trades.schema == pl.Schema(NORMALIZED_TRADES)
    wire = [orjson.loads(f)["data"] for _, f in frames]
    assert trades.height == len(wire) == sum(n for n, _ in symbols.values())
    for row, d in zip(trades.iter_rows(named=True), wire, strict=True):
        f, last = d["f"], d["l"]
        assert row["trade_id"] == (str(f) if f == last else f"{f}-{last}")
        assert row["fills"] == last - f + 1
        assert (row["seq_id"], row["fill_first"], row["fill_last"]) == (d["a"], f, last)
        assert (row["price"], row["size"]) == (Decimal(d["p"]), Decimal(d["q"]))
        assert row["side"] == ("sell" if d["m"] else "buy")
        assert row["channel"] == "aggTrade"
        assert row["symbol"] == x.normalize_symbol(d["s"])
    # what the sample holds, per symbol: contiguous aggTrade ids a, and fill ranges that follow each other
    for symbol, (count, multi) in symbols.items():
        mine = [d for d in wire if d["s"] == symbol]
        assert len(mine) == count
        assert sum(d["l"] > d["f"] for d in mine) == multi
        assert [d["a"] for d in mine] == list(range(mine[0]["a"], mine[0]["a"] + count))
        assert all(b["f"] == a["l"] + 1 for a, b in pairwise(mine))
    assert trades.get_column("fills").sum() == sum(d["l"] - d["f"] + 1 for d in wire)


def test_trade_and_agg_trade_of_one_fill_share_the_trade_id(cryptofeed: CfLines, to_raw: ToRaw) -> None:
    """A real single-fill aggTrade (NKNUSDT, f == l) and the trade frame Binance's trade stream sends for the
    same fill (built in the documented trade layout from the aggTrade's own fields: t = f)."""
    x = binance("binance")
    agg_frame = next(f for _, f in _agg_frames(cryptofeed, "BINANCE.ws.1.0.gz") if '"s":"NKNUSDT"' in f)
    d = orjson.loads(agg_frame)["data"]
    assert d["f"] == d["l"]
    trade = {"e": "trade", "E": d["E"], "s": d["s"], "t": d["f"], "p": d["p"], "q": d["q"], "T": d["T"]}
    trade |= {"m": d["m"], "M": True}
    trade_frame = orjson.dumps({"stream": "nknusdt@trade", "data": trade}).decode()
    trades, rejects = x.normalize_trades_with_rejects(to_raw(x, [(1, trade_frame), (2, agg_frame)]))
    assert rejects.height == 0
    by_channel = {r["channel"]: r for r in trades.iter_rows(named=True)}
    assert by_channel["trade"]["trade_id"] == by_channel["aggTrade"]["trade_id"] == str(d["f"])
    for key in ("symbol", "ts", "price", "size", "side", "fills", "fill_first", "fill_last"):
        assert by_channel["trade"][key] == by_channel["aggTrade"][key], key
    # only the stream's own sequence differs: t for trade, a for aggTrade
    assert (by_channel["trade"]["seq_id"], by_channel["aggTrade"]["seq_id"]) == (d["f"], d["a"])
    (t,), (a,) = x.parse(trade_frame), x.parse(agg_frame)
    assert isinstance(t, Trade) and isinstance(a, Trade)
    assert t.trade_id == a.trade_id and (t.price, t.size, t.fills) == (a.price, a.size, a.fills)


def _binance_rows(to_raw: ToRaw, xid: str, frames: list[str], channel: str = "trade") -> pl.DataFrame:
    """Raw rows as the collector lands them for one stream (routed there even when the payload is broken)."""
    raw = to_raw(binance(xid), [(i + 1, f) for i, f in enumerate(frames)])
    return raw.with_columns(channel=pl.lit(channel), symbol=pl.lit("BTCUSDT"))


TOO_LARGE = "1" + "0" * 26  # 27 integer digits: one more than Decimal(38, 12) holds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.0000000000001", "has more than 12 decimal places: 0.0000000000001"),
        ("61837.6300000000001", "has more than 12 decimal places: 61837.6300000000001"),
        ("1e3", "is not a plain decimal number: 1e3"),
        ("1E-3", "is not a plain decimal number: 1E-3"),
        ("-1", "is not positive: -1"),
        ("-0.5", "is not positive: -0.5"),
        ("0", "is not positive: 0"),
        ("0.000000000000000", "is not positive: 0.000000000000000"),
        ("abc", "is not a plain decimal number: abc"),
        ("NaN", "is not a plain decimal number: NaN"),
        ("inf", "is not a plain decimal number: inf"),
        ("+1", "is not a plain decimal number: +1"),
        (" 1", "is not a plain decimal number:  1"),
        ("1.", "is not a plain decimal number: 1."),
        (".5", "is not a plain decimal number: .5"),
        ("1,5", "is not a plain decimal number: 1,5"),
        ("", "is not a plain decimal number: "),
        (TOO_LARGE, f"is too large for Decimal(38, 12): {TOO_LARGE}"),
        (TOO_LARGE + ".5", f"is too large for Decimal(38, 12): {TOO_LARGE}.5"),
    ],
)
@pytest.mark.parametrize("field", ["price", "size"])
def test_bad_decimals_are_rejected_with_a_reason(to_raw: ToRaw, value: str, reason: str, field: str) -> None:
    key = '"p":"61837.63000000"' if field == "price" else '"q":"0.02000000"'
    bad = SPOT_TRADE.replace(key, f"{key[:4]}{orjson.dumps(value).decode()}")
    assert bad != SPOT_TRADE
    trades, rejects = binance("binance").normalize_trades_with_rejects(
        _binance_rows(to_raw, "binance", [SPOT_TRADE, bad])
    )
    assert trades.height == 1
    assert rejects.schema == pl.Schema(REJECTS)
    assert rejects.get_column("reason").to_list() == [f"{field} {reason}"]
    assert rejects.get_column("payload").to_list() == [bad]  # the raw row, as received


def test_missing_price_is_named(to_raw: ToRaw) -> None:
    bad = SPOT_TRADE.replace('"p":"61837.63000000",', "")
    _, rejects = binance("binance").normalize_trades_with_rejects(_binance_rows(to_raw, "binance", [bad]))
    assert rejects.get_column("reason").to_list() == ["missing price"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.10000000000000000000", Decimal("0.1")),  # trailing zeros are not decimal places
        ("0.000000000001", Decimal("1E-12")),  # the smallest step PRICE holds
        ("0.0000000000010000", Decimal("1E-12")),
        ("99999999999999999999999999.999999999999", Decimal("99999999999999999999999999.999999999999")),
        ("00012.5", Decimal("12.5")),
        ("7", Decimal(7)),
    ],
)
def test_edge_decimals_are_held_exactly(to_raw: ToRaw, value: str, expected: Decimal) -> None:
    frame = SPOT_TRADE.replace('"q":"0.02000000"', f'"q":"{value}"')
    trades, rejects = binance("binance").normalize_trades_with_rejects(_binance_rows(to_raw, "binance", [frame]))
    assert rejects.height == 0
    assert trades.get_column("size").to_list() == [expected]


def test_random_decimals_round_trip_exactly(to_raw: ToRaw) -> None:
    """Every shape PRICE accepts (1..26 integer digits, 0..12 decimals, trailing zeros) comes back as the
    Python Decimal of the same string: polars' string cast is exact once the validation has passed."""
    rng = random.Random(20240809)
    values = []
    for _ in range(3000):
        whole = str(rng.randrange(1, 10 ** rng.randint(1, 26)))
        places = rng.randint(0, 12)
        frac = "".join(rng.choice("0123456789") for _ in range(places)) + "0" * rng.choice((0, 0, 3, 20))
        values.append(f"{whole}.{frac}" if frac else whole)
    frames = [SPOT_TRADE.replace('"p":"61837.63000000"', f'"p":"{v}"') for v in values]
    trades, rejects = binance("binance").normalize_trades_with_rejects(_binance_rows(to_raw, "binance", frames))
    assert rejects.height == 0
    assert trades.get_column("price").to_list() == [Decimal(v) for v in values]


def _agg(**fields: object) -> str:
    """An aggTrade frame in the documented layout (USD-M futures Aggregate Trade Streams)."""
    data: dict[str, object] = {
        "e": "aggTrade",
        "E": 1723161255343,
        "s": "BTCUSDT",
        "a": 5933014,
        "p": "61837.63",
        "q": "0.002",
        "f": 100,
        "l": 105,
        "T": 1723161255342,
        "m": True,
    }
    data.update(fields)
    return orjson.dumps(
        {"stream": "btcusdt@aggTrade", "data": {k: v for k, v in data.items() if v is not None}}
    ).decode()


def test_agg_trade_rows_and_their_rejects(to_raw: ToRaw) -> None:
    frames = [
        _agg(),
        _agg(a=5933015, f=106, l=106, nq="123.7"),  # extra fields (futures "nq") are ignored
        _agg(l=99),
        _agg(f=None),
        _agg(a=None),
        _agg(e="trade"),
        _agg(p="1e3"),
    ]
    trades, rejects = binance("binance-usdm").normalize_trades_with_rejects(
        _binance_rows(to_raw, "binance-usdm", frames, "aggTrade")
    )
    assert trades.select("trade_id", "fills", "seq_id", "fill_first", "fill_last", "side", "symbol").rows() == [
        ("100-105", 6, 5933014, 100, 105, "sell", "BTC-USDT-PERP"),
        ("106", 1, 5933015, 106, 106, "sell", "BTC-USDT-PERP"),
    ]
    assert rejects.get_column("reason").to_list() == [
        "aggTrade last trade id l=99 is before its first f=100",
        "aggTrade lacks its id a or its trade ids f/l",
        "aggTrade lacks its id a or its trade ids f/l",
        "event type is not aggTrade",
        "price is not a plain decimal number: 1e3",
    ]
    assert rejects.get_column("payload").to_list() == frames[2:]


#: the trades push example of the OKX v5 docs (WebSocket public channel "trades"), including the fields newer
#: pushes carry: "count" (trades aggregated; tradeId is then the last of them), "source" and "seqId"
OKX_DOC_ITEM: dict[str, object] = {
    "instId": "BTC-USDT",
    "tradeId": "130639474",
    "px": "42219.9",
    "sz": "0.12060306",
    "side": "buy",
    "ts": "1630048897897",
    "count": "3",
    "source": "0",
    "seqId": 1234,
}
OKX_DOC_PUSH = {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [OKX_DOC_ITEM]}


def _okx_rows(to_raw: ToRaw, items: list[dict[str, object]]) -> pl.DataFrame:
    """One push per item, otherwise the documented push."""
    frames = [orjson.dumps({**OKX_DOC_PUSH, "data": [item]}).decode() for item in items]
    return to_raw(okx(), [(i + 1, f) for i, f in enumerate(frames)])


def test_okx_documented_push_with_count(to_raw: ToRaw) -> None:
    trades, rejects = okx().normalize_trades_with_rejects(_okx_rows(to_raw, [OKX_DOC_ITEM]))
    assert rejects.height == 0
    assert trades.schema == pl.Schema(NORMALIZED_TRADES)
    (row,) = trades.iter_rows(named=True)
    assert row["trade_id"] == "130639474" and row["fills"] == 3
    assert (row["price"], row["size"]) == (Decimal("42219.9"), Decimal("0.12060306"))
    assert (row["seq_id"], row["fill_first"], row["fill_last"]) == (None, None, None)
    assert row["channel"] == "trades" and row["side"] == "buy"
    (event,) = okx().parse(orjson.dumps(OKX_DOC_PUSH).decode())
    assert isinstance(event, Trade) and event.fills == 3 and event.price == Decimal("42219.9")


@pytest.mark.parametrize("count", ["0", "x", "-1", "1.5", "", " 2", "99999999999999999999"])
def test_okx_bad_count_is_rejected(to_raw: ToRaw, count: str) -> None:
    base = dict(OKX_DOC_ITEM)
    trades, rejects = okx().normalize_trades_with_rejects(_okx_rows(to_raw, [base, {**base, "count": count}]))
    assert trades.get_column("fills").to_list() == [3]
    assert rejects.get_column("reason").to_list() == [f"count is not a positive integer: {count}"]


def test_okx_decimals_are_validated_like_binance(to_raw: ToRaw) -> None:
    base = dict(OKX_DOC_ITEM)
    items = [
        {**base, "px": "0.10000000000000000000"},
        {**base, "px": "42219.9000000000001"},
        {**base, "sz": "0"},
        {**base, "sz": "1e-3"},
    ]
    trades, rejects = okx().normalize_trades_with_rejects(_okx_rows(to_raw, items))
    assert trades.get_column("price").to_list() == [Decimal("0.1")]
    assert rejects.get_column("reason").to_list() == [
        "price has more than 12 decimal places: 42219.9000000000001",
        "size is not positive: 0",
        "size is not a plain decimal number: 1e-3",
    ]


def test_decimals_sent_as_json_numbers_are_refused(to_raw: ToRaw) -> None:
    """Both exchanges document strings; a JSON number would be decoded through a float, so it is not taken."""
    numeric = SPOT_TRADE.replace('"p":"61837.63000000"', '"p":61837.63000000000001')
    _, rejects = binance("binance").normalize_trades_with_rejects(_binance_rows(to_raw, "binance", [numeric]))
    assert rejects.get_column("reason").to_list() == ["price or size is a JSON number, not a decimal string"]
    push = orjson.dumps(OKX_DOC_PUSH).decode().replace('"sz":"0.12060306"', '"sz": 0.12060306')
    _, rejects = okx().normalize_trades_with_rejects(to_raw(okx(), [(1, push)]))
    assert rejects.get_column("reason").to_list() == ["px or sz is a JSON number, not a decimal string"]


def test_split_trades_checks_its_inputs(to_raw: ToRaw) -> None:
    """The shared half refuses parsed columns it cannot trust (what a new exchange module could get wrong)."""
    raw = to_raw(binance("binance"), [(1, SPOT_TRADE), (2, SPOT_TRADE), (3, SPOT_TRADE)])
    parsed = raw.with_columns(
        _symbol=pl.lit("BTCUSDT"),
        _ts=pl.lit(1, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        _trade_id=pl.lit("7"),
        _price=pl.lit("1.5"),
        _size=pl.lit("2"),
        _side=pl.lit("buy"),
        _fills=pl.Series([1, 0, 3]),
        _seq_id=pl.lit(None, dtype=pl.Int64),
        _fill_first=pl.Series([7, 7, 7]),
        _fill_last=pl.Series([7, 7, 8]),
    )
    trades, rejects = split_trades(parsed, exchange="binance", normalize_symbol=str.lower)
    assert trades.select("symbol", "price", "size", "fills", "fill_first").rows() == [
        ("btcusdt", Decimal("1.5"), Decimal(2), 1, 7)
    ]
    assert rejects.get_column("reason").to_list() == [
        "missing or invalid fills count",
        "fill id range 7..8 does not hold 3 fills",
    ]
    with pytest.raises(ValueError, match="lack parsed columns"):
        split_trades(parsed.drop("_fills"), exchange="binance", normalize_symbol=str)
    with pytest.raises(TypeError, match="_price must be the exchange's decimal string"):
        split_trades(parsed.with_columns(_price=pl.lit(1.5)), exchange="binance", normalize_symbol=str)


def test_the_fast_decimal_check_accepts_exactly_what_the_reasons_accept() -> None:
    """split_trades works out a value's reason only where two regexes (``_exact``) say it has one: they must agree
    with ``decimal_reason`` on every string, boundaries first (26 integer digits, 12 decimals, zeros, signs)."""
    import random

    from mdplatform.exchanges._normalize import _exact, decimal_reason

    rng = random.Random(15)
    values: list[str | None] = [
        None, "", "0", "0.0", "00.000", "1", "1.", ".5", "1e5", "NaN", "-1", "+1", " 1", "1 ", "0x1F", "١٢",
        "0.000000000001", "0.0000000000001", "0.0000000000010", "0.1000000000000000000",
        "1" + "0" * 25, "1" + "0" * 26, "0" * 5 + "1" + "0" * 25, "0" * 5 + "1" + "0" * 26, "9" * 26 + ".999999999999",
    ]  # fmt: skip
    for _ in range(50_000):
        text = "".join(rng.choice("0123456789") for _ in range(rng.choice([0, 1, 2, 5, 12, 25, 26, 27, 30])))
        if rng.random() < 0.7:
            text += "." + "".join(rng.choice("000123456789") for _ in range(rng.choice([0, 1, 8, 12, 13, 16])))
        if rng.random() < 0.05:
            text = rng.choice("-+ ") + text
        if rng.random() < 0.05:
            text = text.replace(rng.choice("0123456789"), rng.choice("eE.x "), 1)
        if rng.random() < 0.1:
            text = "0" * rng.randint(1, 5) + text
        values.append(text)
    df = pl.DataFrame({"v": values}, schema={"v": pl.String})
    slow = df.select(decimal_reason(pl.col("v"), "price").is_null()).to_series()
    fast = df.select(_exact(pl.col("v"))).to_series()
    assert 0 < slow.sum() < len(values)
    assert fast.to_list() == slow.to_list()
