"""A local exchange that replays captures through each exchange's real WebSocket/REST protocol.

The server (sockets, the shared cursor, pacing, REST budget) is here; each exchange's protocol adapter lives in its
own folder and is returned by ``Exchange.replay_protocol`` (``protocol_for`` looks it up by registry id).
"""

from ._run import run_replay
from ._server import ReplayServer, live_shift_ns, minute_shift_ns, protocol_for, text_frame

__all__ = [
    "ReplayServer",
    "live_shift_ns",
    "minute_shift_ns",
    "protocol_for",
    "run_replay",
    "text_frame",
]
