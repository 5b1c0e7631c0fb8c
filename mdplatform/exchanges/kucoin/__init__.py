"""KuCoin spot public WebSocket: bullet-public token handshake, level2 (REST snapshot + sequences), match, ticker,
candles 1min (raw); REST trade history (the last 100 trades)."""

from ._book import BOOK_CHANNEL, SNAPSHOT_CHANNEL, KucoinBookBuilder, KucoinSession
from ._exchange import STREAMS_PER_CONNECTION, KucoinExchange, KucoinNegotiationError
from ._history import KUCOIN_PUBLIC_LIMIT, KUCOIN_REST_BASE, KucoinTradeHistory
from ._wire import BULLET_PATH, HISTORY_PATH, PING, SNAPSHOT_PATH

__all__ = [
    "BOOK_CHANNEL",
    "BULLET_PATH",
    "HISTORY_PATH",
    "KUCOIN_PUBLIC_LIMIT",
    "KUCOIN_REST_BASE",
    "PING",
    "SNAPSHOT_CHANNEL",
    "SNAPSHOT_PATH",
    "STREAMS_PER_CONNECTION",
    "KucoinBookBuilder",
    "KucoinExchange",
    "KucoinNegotiationError",
    "KucoinSession",
    "KucoinTradeHistory",
]
