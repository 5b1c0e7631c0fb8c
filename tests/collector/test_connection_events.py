"""The connection's event bookkeeping without a socket: minute restatements, acks, newest exchange time."""

from __future__ import annotations

import pytest

from mdplatform.collector import ConfigError, Connection, ExchangeCollectorConfig
from mdplatform.collector._collector import gate_for
from mdplatform.exchanges import Subscription, get_exchange
from mdplatform.history import RestClient

MINUTE_NS = 60 * 10**9
M = 1_723_161_240 * 10**9  # 2024-08-08 23:54:00 UTC


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def append_frames(self, *rows: object) -> None:
        pass

    def event(self, *row: object) -> None:
        self.events.append(row)

    def kinds(self) -> list[tuple[object, ...]]:
        # (recv_ts, kind, channel, symbol, seq, exchange_ts, frame_recv_ts)
        return [(r[0], r[3], r[4], r[5], r[6], r[7], r[8]) for r in self.events]


def _connection(exchange: str, sink: Sink) -> Connection:
    config = ExchangeCollectorConfig(
        exchange=exchange, symbols=("X",), channels=("trades",) if exchange == "okx" else ("trade",)
    )
    subs = [Subscription(config.channels[0], "X")]
    conn = Connection(get_exchange(exchange), config, subs, sink, RestClient(), gate_for(config))
    conn._begin("c1", M + 1)
    return conn


def test_subscribed_is_restated_with_the_first_alive_of_each_minute() -> None:
    sink = Sink()
    conn = _connection("okx", sink)
    ack = '{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}'
    conn._control(ack, M + 2)
    conn._control('{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}', M + 3)
    conn._alive(M + 10, (None, None), 0)  # the minute of the acks: nothing to restate
    conn._alive(M + MINUTE_NS + 5, (7, 6), 4)  # a new minute: both streams, then the alive
    conn._alive(M + MINUTE_NS + 9, (8, 7), 5)  # same minute: just the alive
    conn._control('{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"}}', M + MINUTE_NS + 10)
    conn._alive(M + 3 * MINUTE_NS, (9, 8), 6)  # a minute later still: only what is still subscribed
    assert [(t, k, ch, sym) for t, k, ch, sym, *_ in sink.kinds()] == [
        (M + 2, "subscribed", "trades", "BTC-USDT"),
        (M + 3, "subscribed", "books", "BTC-USDT"),
        (M + 10, "alive", "", ""),
        (M + MINUTE_NS + 5, "subscribed", "trades", "BTC-USDT"),
        (M + MINUTE_NS + 5, "subscribed", "books", "BTC-USDT"),
        (M + MINUTE_NS + 5, "alive", "", ""),
        (M + MINUTE_NS + 9, "alive", "", ""),
        (M + MINUTE_NS + 10, "unsubscribed", "books", "BTC-USDT"),
        (M + 3 * MINUTE_NS, "subscribed", "trades", "BTC-USDT"),
        (M + 3 * MINUTE_NS, "alive", "", ""),
    ]
    # restatements carry the alive's seq and exchange time
    assert sink.kinds()[3][4:] == (4, 7, 6)
    assert conn.counters.subscribed == 1 and conn.counters.last_alive_ns == M + 3 * MINUTE_NS


def test_refusals_are_counted_and_listed() -> None:
    sink = Sink()
    conn = _connection("okx", sink)
    conn._control('{"event":"error","code":"60018","msg":"doesn\'t exist","connId":"a"}', M + 5)
    assert sink.kinds() == [(M + 5, "sub_error", "", "", 0, None, None)]
    assert sink.events[0][9] == "60018: doesn't exist"
    assert conn.counters.sub_errors == 1 and conn.counters.refused == ["60018: doesn't exist"]
    conn._begin("c2", M + MINUTE_NS)  # a new connection tries again: its refusals are its own
    assert conn.counters.refused == [] and conn.counters.sub_errors == 1


def test_newest_exchange_time_is_looked_up_in_the_last_frame() -> None:
    sink = Sink()
    conn = _connection("binance", sink)
    c = conn.counters
    assert conn._newest() == (None, None)
    conn._last.frame, c.last_message_ns = '{"stream":"x@trade","data":{"e":"trade","E":1000}}', 50
    assert conn._newest() == (1000 * 10**6, 50)
    # a frame without a time (spot bookTicker) and one with an older time keep what was known
    conn._last.frame, c.last_message_ns = '{"stream":"x@bookTicker","data":{"u":1,"s":"X"}}', 60
    assert conn._newest() == (1000 * 10**6, 50)
    conn._last.frame, c.last_message_ns = '{"stream":"x@trade","data":{"e":"trade","E":999}}', 70
    assert conn._newest() == (1000 * 10**6, 50)
    conn._last.frame, c.last_message_ns = '{"stream":"x@trade","data":{"e":"trade","E":1001}}', 80
    assert conn._newest() == (1001 * 10**6, 80)


def test_liveness_interval_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="liveness_interval_s"):
        ExchangeCollectorConfig.from_mapping(
            {"exchange": "binance", "symbols": ["BTCUSDT"], "channels": ["trade"], "liveness_interval_s": 0}
        )
    cfg = ExchangeCollectorConfig.from_mapping({"exchange": "binance", "symbols": ["BTCUSDT"], "channels": ["trade"]})
    assert cfg.liveness_interval_s == 5.0


class _Link:
    """What the watchdog needs of a link: it records the text frames sent."""

    def __init__(self) -> None:
        self.closing = False
        self.sent: list[str] = []

    def send_text(self, text: str) -> None:
        self.sent.append(text)


@pytest.mark.parametrize(("exchange", "channel", "pings"), [("bybit", "publicTrade", True), ("okx", "trades", False)])
def test_a_busy_connection_pings_only_where_the_exchange_counts_the_clients_pings(
    exchange: str, channel: str, pings: bool
) -> None:
    """Bybit (and KuCoin) want the client's ping every interval however busy the connection; OKX only a silent
    connection's. A frame arrives every 20 ms for 1 s, the ping interval is 0.2 s."""
    import asyncio

    async def scenario() -> list[str]:
        config = ExchangeCollectorConfig(exchange=exchange, symbols=("X",), channels=(channel,), ping_interval_s=0.2)
        conn = Connection(
            get_exchange(exchange), config, [Subscription(channel, "X")], Sink(), RestClient(), gate_for(config)
        )
        link = _Link()
        watchdog = asyncio.ensure_future(conn._watchdog(link))  # type: ignore[arg-type]
        for _ in range(50):
            conn.counters.messages_received += 1
            await asyncio.sleep(0.02)
        link.closing = True
        await watchdog
        return link.sent

    sent = asyncio.run(scenario())
    if pings:
        assert 3 <= len(sent) <= 6 and set(sent) == {'{"op":"ping"}'}
    else:
        assert sent == []
