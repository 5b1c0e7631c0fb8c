"""A local exchange that replays captures through each exchange's real WebSocket/REST protocol."""

from ._binance import BinanceReplay, stream_key
from ._okx import OkxReplay
from ._protocol import HttpReply, Prepared, Query, ReplayClient, ReplayProtocol
from ._run import run_replay
from ._server import PROTOCOLS, ReplayServer, live_shift_ns, minute_shift_ns, text_frame

__all__ = [
    "PROTOCOLS",
    "BinanceReplay",
    "HttpReply",
    "OkxReplay",
    "Prepared",
    "Query",
    "ReplayClient",
    "ReplayProtocol",
    "ReplayServer",
    "live_shift_ns",
    "minute_shift_ns",
    "run_replay",
    "stream_key",
    "text_frame",
]
