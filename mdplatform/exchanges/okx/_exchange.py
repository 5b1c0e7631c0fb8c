"""OKX v5 public WebSocket (wss://ws.okx.com:8443/ws/v5/public), as documented today (checked 2026-12).

Pages followed: OKX API v5 docs (https://www.okx.com/docs-v5/en/) "WebSocket / Overview" (subscribe, "ping"/"pong",
30 s idle limit, 3 connection requests per second per IP), "WS / Trades channel", "WS / Order book channel" (with
its "Sequence ID" and "Checksum" sections), "GET / Order book"; the API changelog (https://www.okx.com/docs-v5/log_en,
"Delist initial snapshot and checksum field in order book channels") and the help-centre notice "OKX Order Book
Channels Checksum Field Deprecation" (checksum always 0 from 2026-06-23). The book rules are in ``_book``.

Wire format: subscribe with ``{"op":"subscribe","args":[{"channel":..,"instId":..},...]}``; pushes are
``{"arg":{"channel":"X","instId":"Y"},["action":"snapshot"|"update",]"data":[...]}``; acks and errors are
``{"event":...}`` frames; the client sends the text "ping" when idle and the server answers "pong".
Order books (``books``; ``books-l2-tbt``/``books50-l2-tbt`` are read alike but need a VIP login to subscribe): the
snapshot arrives on the WebSocket (``prevSeqId`` -1), then updates chained by ``seqId``/``prevSeqId``; when no WS
snapshot comes, ``GET /api/v5/market/books`` gives one. Trades (``trades``): one item per push element with the
taker ``side``; ``count`` is the number of fills the item aggregates (its ``tradeId`` is the last of them). OKX
does not promise contiguous trade ids. Perpetual swaps (``BTC-USDT-SWAP``) normalize to ``BTC-USDT-PERP``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from ...history import RateLimit

if TYPE_CHECKING:
    from ...contract import ReplayProtocol
from ...contract import (
    SUB_ERROR,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Capabilities,
    CaptureHints,
    KeepAlive,
    Route,
    StreamEvent,
    Subscription,
    TradeHistory,
)
from .._events import BookDelta, BookSnapshot, Event, Level, Ticker, Trade
from .._normalize import (
    decode_json,
    empty_normalized_trades,
    empty_rejects,
    explode_records,
    ms_to_ts,
    raw_rows,
    split_trades,
)
from .._scan import json_object, ms_after, ms_after_all
from .._urls import with_default_path
from ._book import CHECKSUM_DEPTH, FULL_BOOK_CHANNELS, OkxBookBuilder, OkxSession, okx_checksum
from ._history import OkxTradeHistory

__all__ = ["CHECKSUM_DEPTH", "OkxBookBuilder", "OkxExchange", "OkxSession", "okx_checksum"]

CONTROL: Route = ("control", "")

_FULL_BOOK_CHANNELS = FULL_BOOK_CHANNELS
#: channels whose every push is a complete top-N book
_TOP_BOOK_CHANNELS = frozenset({"books5", "bbo-tbt"})
_CHANNELS = frozenset({"trades", "books", "books5", "tickers"})
#: what precedes a frame's exchange time: the ``ts`` (ms, in a string) of a push's first item
_TIME_MARKER = '"ts":"'
#: OKX accepts many args per request; batches keep each frame far below its 64 KB request limit
_ARGS_PER_MESSAGE = 100

#: the fields of a trades push that normalization reads (all strings on the wire; others, like "source" and
#: "seqId", are ignored). px and sz stay strings: exact decimals.
_TRADES_PUSH = pl.Struct(
    {
        "arg": pl.Struct({"channel": pl.String(), "instId": pl.String()}),
        "data": pl.List(pl.Struct({k: pl.String() for k in ("instId", "tradeId", "px", "sz", "side", "ts", "count")})),
    }
)
_COUNT = r"^[0-9]+$"
#: px or sz sent as a JSON number: polars would decode it through a float, so the push is refused, never rounded
_NUMERIC_DECIMAL = r'"(?:px|sz)":\s*[-0-9]'

_ARG_PREFIX = '{"arg":{"channel":"'
_ARG_LEN = len(_ARG_PREFIX)
_INST_SEP = '","instId":"'
_INST_LEN = len(_INST_SEP)


def _levels(raw: Sequence[Sequence[str]]) -> tuple[Level, ...]:
    return tuple((float(p), float(q)) for p, q, *_ in raw)


def _float(value: object) -> float:
    # OKX sends "" for an absent price (an empty book side)
    return float(value) if value not in (None, "") else float("nan")  # type: ignore[arg-type]


def _ms(value: object) -> int | None:
    return int(value) * 1_000_000 if value not in (None, "") else None  # type: ignore[call-overload]


class OkxExchange:
    """OKX v5 public channels: trades, books, books5, tickers (any instrument type)."""

    #: contract attributes (the collector only reads them)
    id = "okx"
    ws_url = "wss://ws.okx.com:8443/ws/v5/public"
    rest_url: str | None = None  # snapshots come over the WebSocket
    capture_hints = CaptureHints(hosts=("okx.com",), feeds=("OKX", "OKEX"))

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            channels=_CHANNELS,
            trade_channels=frozenset({"trades"}),
            book_channels=frozenset({"books", "books5"}),
            ticker_channels=frozenset({"tickers"}),
            book_sync="ws-snapshot",
            sequence_check=True,
            checksum=True,
            markets=frozenset({"spot", "swap", "futures"}),  # options parse alike; no recording holds one
            subscribe_ack=True,
        )
        # OKX closes a connection silent for 30 s: ping after 20 s of silence, give up after 35 s
        # connection requests: 3 per second per IP
        self.keepalive = KeepAlive(
            client_ping="ping", interval_s=20.0, idle_timeout_s=35.0, connects_per_s=3.0, connect_burst=3
        )
        self._history = OkxTradeHistory()

    def __repr__(self) -> str:
        return "OkxExchange()"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import OkxReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return OkxReplay(self)

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, self.ws_url)

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._op_messages("subscribe", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._op_messages("unsubscribe", subs)

    def _op_messages(self, op: str, subs: Sequence[Subscription]) -> list[str]:
        args: list[dict[str, str]] = []
        for sub in dict.fromkeys(subs):
            if not sub.channel or not sub.symbol:
                raise ValueError(f"okx: subscription needs a channel and an instId, got {sub}")
            args.append({"channel": sub.channel, "instId": sub.symbol})
        return [
            orjson.dumps({"op": op, "args": args[i : i + _ARGS_PER_MESSAGE]}).decode()
            for i in range(0, len(args), _ARGS_PER_MESSAGE)
        ]

    # -- hot path ------------------------------------------------------------------------------------------
    #: a push is routed by the text of its "arg" up to the fifth quote after this prefix: ``channel","instId":"inst``
    #: (``route_key``; the compiled receive path looks keys up without making text of the frame)
    route_prefix = (_ARG_PREFIX, 5)

    def route_key(self, key: str) -> Route | None:
        """The route of every frame starting with ``route_prefix`` whose key is ``key`` (None when the key alone does
        not say: an "arg" laid out otherwise)."""
        channel, sep, inst = key.partition(_INST_SEP)
        return (channel, inst) if sep and '"' not in channel else None

    def route(self, frame: str) -> Route:
        if frame.startswith(_ARG_PREFIX):
            end = frame.find('"', _ARG_LEN)
            if frame.startswith(_INST_SEP, end):
                start = end + _INST_LEN
                return frame[_ARG_LEN:end], frame[start : frame.find('"', start)]
        elif frame == "pong" or frame.startswith('{"event"'):
            return CONTROL
        return self._route_slow(frame)

    def exchange_time(self, frame: str) -> int | None:
        """``ts`` (ms) of the first item of a push, in ns; None for acks and pongs."""
        return ms_after(frame, _TIME_MARKER)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return ms_after_all(frames, _TIME_MARKER)

    def control_events(self, frame: str) -> list[StreamEvent]:
        """``{"event":"subscribe","arg":{...}}`` acks one stream; ``{"event":"error","code":..,"msg":..}`` is a
        refused request (OKX names the request only in ``msg``)."""
        obj = json_object(frame) if frame.startswith("{") and '"event"' in frame else None
        if obj is None:
            return []
        event = obj.get("event")
        raw_arg = obj.get("arg")
        arg: dict[str, Any] = raw_arg if isinstance(raw_arg, dict) else {}
        channel, inst = str(arg.get("channel", "")), str(arg.get("instId", ""))
        if event == "subscribe":
            return [StreamEvent(SUBSCRIBED, channel, inst)]
        if event == "unsubscribe":
            return [StreamEvent(UNSUBSCRIBED, channel, inst)]
        if event == "error":
            return [StreamEvent(SUB_ERROR, channel, inst, f"{obj.get('code', '')}: {obj.get('msg', '')}")]
        return []

    def _route_slow(self, frame: str) -> Route:
        """Frames whose "arg" is not laid out as usual (other key order, instType/instFamily args)."""
        i = frame.find('"arg":{')
        if i < 0 or '"event":"' in frame:
            if '"arg"' in frame:  # spaced JSON ({"arg": {"channel": ...}}): decoded (rare, so affordable)
                obj = json_object(frame)
                arg = obj.get("arg") if obj is not None and "event" not in obj else None
                if isinstance(arg, dict):
                    return str(arg.get("channel", "")), str(arg.get("instId", ""))
            return CONTROL
        arg = frame[i + 7 : frame.find("}", i)]
        return _json_str(arg, '"channel":"'), _json_str(arg, '"instId":"')

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> OkxSession:
        """``rest_url``: where REST book snapshots are asked for (the replay's in tests; OKX's own by default)."""
        return OkxSession(self, subs, rest_url)

    #: BookRebuilding: every ``books`` push carries the exchange's time as a string
    book_time_patterns: tuple[str, ...] = (r'"ts":"(\d+)"',)

    def book_builder(self, symbol: str, *, keep_raw: bool = True) -> OkxBookBuilder:  # BookRebuilding
        """The full book of one instId from its ``books`` pushes and the REST snapshots landed as ``depthSnapshot``
        (raw strings are always kept: the checksum needs them)."""
        return OkxBookBuilder(symbol)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """A REST call counts as one request. ``GET /api/v5/market/books`` allows 40 per 2 s per IP and
        ``history-trades`` 20 per 2 s; the collector's one limiter per host takes the tighter, 20 per 2 s."""
        return 1, self._history.rate_limit

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``GET /api/v5/market/history-trades`` for "trades" (see ``_history``); its payloads
        (``{"code":"0","msg":"","data":[...]}``) normalize like a trades push."""
        return self._history if channel == "trades" else None

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """instIds are BASE-QUOTE[-...] already; perpetual swaps end in -PERP like everywhere else here."""
        return symbol[:-5] + "-PERP" if symbol.endswith("-SWAP") else symbol

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Raw rows -> trades (channel "trades"; see ``normalize_trades_with_rejects``)."""
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects): one trade per element of ``data``; rejects keep the raw row plus ``reason``.

        trades: ``mdplatform.schemas.TRADES`` then ``TRADE_LINEAGE`` (``_normalize.NORMALIZED_TRADES``), px and sz
        exact from the wire strings; ``fills`` = ``count`` (1 when absent, as before OKX added it); ``seq_id``,
        ``fill_first`` and ``fill_last`` are null: OKX trade ids are not promised contiguous, and an aggregated
        item names only its last fill.
        """
        rows = raw_rows(raw, self.id, ["trades"])
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        decoded, ok = decode_json(rows.get_column("payload"), _TRADES_PUSH)
        items = decoded.struct.field("data")
        rows = explode_records(rows, ok, items, _data_missing=items.is_null())
        it = pl.col("_items").struct
        count = it.field("count")
        no_id = pl.lit(None, dtype=pl.Int64)
        rows = rows.with_columns(
            _symbol=pl.coalesce(it.field("instId"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=ms_to_ts(it.field("ts")),
            _trade_id=it.field("tradeId"),
            _price=it.field("px"),
            _size=it.field("sz"),
            _side=it.field("side"),
            _count=count,
            _fills=pl.when(count.is_null())
            .then(pl.lit(1, dtype=pl.Int64))
            .otherwise(count.cast(pl.Int64, strict=False)),
            _seq_id=no_id,
            _fill_first=no_id,
            _fill_last=no_id,
        )
        count_col = pl.col("_count")
        bad_count = count_col.is_not_null() & (
            count_col.str.contains(_COUNT).not_() | (pl.col("_fills") < 1)
        ).fill_null(True)
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a trades push in the documented layout"))
            .when(pl.col("_data_missing"))
            .then(pl.lit("payload has no data list"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("px or sz is a JSON number, not a decimal string"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in data"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in data"))
            .when(bad_count)
            .then(pl.format("count is not a positive integer: {}", count_col.str.slice(0, 64)))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    # -- typed parsing (tests and tools) -------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> list[Event]:
        """All events in one frame; [] for event/ack frames and "pong"."""
        if frame in ("pong", b"pong"):
            return []
        obj = orjson.loads(frame)
        if not isinstance(obj, dict) or "event" in obj:
            return []
        arg = obj.get("arg")
        data = obj.get("data")
        if not isinstance(arg, dict) or not isinstance(data, list):
            return []
        channel = str(arg.get("channel", ""))
        inst = str(arg.get("instId", ""))
        action = obj.get("action")
        return [e for d in data if (e := self._event(channel, inst, action, d)) is not None]

    def _event(self, channel: str, inst: str, action: object, d: Mapping[str, Any]) -> Event | None:
        if channel == "trades":
            count = d.get("count")
            return Trade(
                exchange="okx",
                channel=channel,
                symbol=d.get("instId", inst),
                ts=int(d["ts"]) * 1_000_000,
                trade_id=str(d["tradeId"]),
                price=Decimal(d["px"]),
                size=Decimal(d["sz"]),
                side=d["side"],
                fills=1 if count is None else int(count),
            )
        if channel in _FULL_BOOK_CHANNELS or channel in _TOP_BOOK_CHANNELS:
            seq = d.get("seqId")
            checksum = d.get("checksum")
            common: dict[str, Any] = {
                "exchange": "okx",
                "channel": channel,
                "symbol": d.get("instId", inst),
                "ts": _ms(d.get("ts")),
                "bids": _levels(d.get("bids", ())),
                "asks": _levels(d.get("asks", ())),
                "checksum": None if checksum is None else int(checksum),
            }
            if channel in _FULL_BOOK_CHANNELS and action == "update":
                prev = d.get("prevSeqId")
                return BookDelta(
                    **common,
                    last_update_id=None if seq is None else int(seq),
                    prev_update_id=None if prev is None else int(prev),
                )
            return BookSnapshot(**common, update_id=None if seq is None else int(seq))
        if channel == "tickers":
            return Ticker(
                exchange="okx",
                channel=channel,
                symbol=d.get("instId", inst),
                ts=_ms(d.get("ts")),
                bid_price=_float(d.get("bidPx")),
                bid_size=_float(d.get("bidSz")),
                ask_price=_float(d.get("askPx")),
                ask_size=_float(d.get("askSz")),
                last_price=_float(d.get("last")),
            )
        return None


def _json_str(text: str, key: str) -> str:
    i = text.find(key)
    if i < 0:
        return ""
    start = i + len(key)
    return text[start : text.find('"', start)]
