"""The replays' recorded trades by symbol: what each serves its REST trade history from."""

from __future__ import annotations

from ..contract import TradeLog

__all__ = ["TradeLogs"]


class TradeLogs(dict[str, TradeLog]):
    """One ``TradeLog`` per symbol (the exchange's own id), made when its first trade is scanned."""

    def log(self, symbol: str) -> TradeLog:
        log = self.get(symbol)
        if log is None:
            log = self[symbol] = TradeLog()
        return log

    def finish(self) -> None:
        """The scan is over: every log sorts what it holds (``TradeLog.finish``)."""
        for log in self.values():
            log.finish()
