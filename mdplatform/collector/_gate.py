"""New connections to one exchange, spread to the rate it accepts from one IP.

When a network blip drops every connection at once, each reconnects after its own jittered backoff, but a
hundred connections would still arrive within the same few hundred milliseconds: an exchange that counts
connections per IP (Binance 300 per 5 minutes, OKX 3 per second) answers a storm with refusals or a ban. Every
connection attempt of an exchange takes a token from one bucket: ``burst`` at once, then ``per_s``.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["ConnectGate"]


class ConnectGate:
    def __init__(self, per_s: float, burst: int) -> None:
        if per_s <= 0 or burst < 1:
            raise ValueError(f"a connection rate needs per_s > 0 and burst >= 1, not {per_s}/s, burst {burst}")
        self.per_s = per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = asyncio.Lock()
        #: attempts that had to wait, and for how long in all
        self.waits = 0
        self.waited_s = 0.0

    async def acquire(self) -> float:
        """Wait for a connection slot (first come, first served); returns the seconds waited."""
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_s)
            self._at = now
            wait = 0.0
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.per_s
                await asyncio.sleep(wait)
                self.waits += 1
                self.waited_s += wait
                self._at = time.monotonic()
                self._tokens = 1.0
            self._tokens -= 1.0
            return wait
