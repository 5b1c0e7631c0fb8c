"""A reconnect storm is spread: when every connection of an exchange drops at once, their new connections arrive
at the exchange's accepted rate (a burst, then one per 1/rate seconds), not all in the same instant."""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.server import ServerConnection, serve

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.exchanges import get_exchange
from mdplatform.ingest import Ingestor

SYMBOLS = [f"S{i}USDT" for i in range(10)]
RATE = 20.0  # connections per second (the test's own rate; Binance's documented one is 1/s after a burst)


def test_connections_dropped_at_once_come_back_at_the_exchanges_rate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    burst = get_exchange("binance").keepalive.connect_burst
    accepted: list[float] = []
    drop = asyncio.Event()

    async def scenario() -> dict:  # type: ignore[type-arg]
        async def handler(ws: ServerConnection) -> None:
            accepted.append(time.monotonic())
            wave = drop.is_set()
            if not wave:
                await drop.wait()
                await ws.close()  # every first-wave connection drops in the same instant
                return
            await asyncio.sleep(30)

        server = await serve(handler, "127.0.0.1", 0, compression=None)
        port = server.sockets[0].getsockname()[1]
        config = ExchangeCollectorConfig(
            exchange="binance",
            symbols=tuple(SYMBOLS),
            channels=("trade",),
            ws_url=f"ws://127.0.0.1:{port}",
            max_streams_per_connection=1,
            reconnect_initial_s=0.001,
            reconnect_max_s=0.002,
            connects_per_s=RATE,
        )
        ingestor = Ingestor(IngestConfig((config,), journal=str(tmp_path / "journal")), lake=str(tmp_path / "lake"))
        stop = asyncio.Event()
        run = asyncio.create_task(ingestor.run(stop=stop))
        try:
            while len(accepted) < len(SYMBOLS):
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)  # the bucket fills up again
            drop.set()
            while len(accepted) < 2 * len(SYMBOLS):
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            result = await run
            server.close()
        return result.status

    status = asyncio.run(scenario())
    first, second = accepted[: len(SYMBOLS)], sorted(accepted[len(SYMBOLS) :])
    spacing = 1 / RATE
    # first connections: a burst, then the rest one by one at the rate
    assert first[-1] - first[0] >= (len(SYMBOLS) - burst) * spacing * 0.9
    # the storm: a burst at once, then never two closer than the rate allows
    gaps = [b - a for a, b in zip(second[burst - 1 :], second[burst:], strict=False)]
    assert len(gaps) == len(SYMBOLS) - burst
    # (accept times carry the scheduler's jitter: one gap may come short by what the one before ran long)
    assert min(gaps) >= spacing * 0.5, gaps
    assert sum(gaps) >= len(gaps) * spacing * 0.9, gaps
    assert second[-1] - second[0] >= (len(SYMBOLS) - burst) * spacing * 0.9
    (collector,) = status["collectors"]
    assert collector["reconnects"] == len(SYMBOLS)
    assert collector["connect_waits"] == 2 * (len(SYMBOLS) - burst)
