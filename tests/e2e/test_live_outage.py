"""Live: the ingestor reaches the replayed exchange through a TCP proxy that cuts the connection for a few seconds,
while the exchange goes on sending (`--no-pause`: what nobody received is lost, as on a real exchange). Later
the market goes quiet for 150 s on a healthy connection. Then `mdp materialize`:

- the outage is in `coverage` and no candle over it is complete (1m, 5m and longer);
- the quiet stretch is never passed off as observed: at 30x the exchange's clock runs 30 times the collector's,
  so its 150 s pass in 5 s of receive time, which the platform may not tell from a jump of the exchange clock
  (issue 18: a jump while ids stay contiguous must not make flat candles complete). Its flat candle is complete
  only where coverage says the whole minute was covered, else there is none or it is marked incomplete over a
  `clock jump` or `silent` gap. (A quiet stretch at the recording's own pace: tests/dagster/test_materialize.)

The capture is the real spot recording; the quiet stretch is made by moving every frame after 23:58:30 (local
receive time and the exchange times inside the frames) 150 s later, so ids and book sequence stay unbroken.
The cut comes early enough (~23:55:05) that the new connection is up and receiving well before the quiet stretch:
a connection that has not yet received a frame carrying the exchange's time has no exchange clock, so a quiet
stretch right after a reconnect is proven only by the trade ids around it.
"""

from __future__ import annotations

import asyncio
import re
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest
from _proxy import CuttingProxy
from candle_reference import MIN, read_lines, write_lines
from click.testing import CliRunner

from assets.cli import materialize as materialize_cli
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TIMEFRAMES
from mdplatform.warehouse import Warehouse

S = 10**9
SPEED = 30
QUIET_AT = 1723161510 * S  # 2024-08-08 23:58:30 (local receive time in the recording)
QUIET_S = 150
_TIMES = re.compile(r'"([ET])":(\d{13})')


def quiet_capture(source: Path, target: Path) -> Path:
    """The recording with everything after QUIET_AT moved QUIET_S seconds later (receive and exchange times)."""
    shift_ms = QUIET_S * 1000

    def later(frame: str) -> str:
        return _TIMES.sub(lambda m: f'"{m.group(1)}":{int(m.group(2)) + shift_ms}', frame)

    lines = [(r, f) if r < QUIET_AT else (r + QUIET_S * S, later(f)) for r, f in read_lines(source)]
    return write_lines(lines, target)


@pytest.mark.timeout(240)
def test_outage_is_in_coverage_and_quiet_stretch_stays_complete(
    tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    capture = quiet_capture(shared_data / "binance-hftbacktest/spot/btcusdt_20240808.gz", tmp_path / "btcusdt.gz")
    lake = str(tmp_path / "lake")

    async def scenario() -> tuple[int, int, int]:
        async with ReplayServer([capture], speed=SPEED, rebase=True, pause_when_idle=False, verbose=False) as server:
            proxy = CuttingProxy(("127.0.0.1", server.port))
            port = await proxy.start()
            config = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT",),
                channels=("trade", "depth", "bookTicker"),
                ws_url=f"ws://127.0.0.1:{port}",
                rest_url=server.rest_url,
                reconnect_initial_s=0.05,
                reconnect_max_s=0.5,
                liveness_interval_s=1.0,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake, status_every_s=1.0)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            # about a minute in (exchange time ~23:55:05), the link goes down for 3 s (90 s of market at 30x)
            while server.position < 6_000:
                await asyncio.sleep(0.02)
            proxy.cut(3.0)
            await server.wait_finished(timeout=120)
            await asyncio.sleep(1.5)  # the last pongs
            stop.set()
            await task
            await proxy.stop()
            return server.missed, server.shift_ns, ingestor.manager.get_status()["reconnects"]

    missed, shift, reconnects = asyncio.run(scenario())
    assert missed > 1000 and reconnects >= 1

    result = CliRunner().invoke(materialize_cli, ["--lake", lake, "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    wh = Warehouse(str(Path(lake) / "warehouse.duckdb"))
    trades = wh.query("SELECT trade_id, ts FROM trades ORDER BY ts, trade_id")
    ids = trades.get_column("trade_id").cast(pl.Int64).to_list()
    jumps = [(a, b) for a, b in pairwise(ids) if b != a + 1]
    assert len(jumps) == 1, jumps  # the outage lost trades; nothing else did
    (lost_from, lost_to) = jumps[0]
    lost_ts = trades.filter(pl.col("trade_id").cast(pl.Int64).is_in([lost_from, lost_to])).get_column("ts")
    before, after = (int(t.timestamp() * 10**6) * 1000 for t in lost_ts)

    # the outage, in coverage: gaps of the trade stream span it, not connected while the link was down
    gaps = wh.query("SELECT * FROM coverage WHERE channel = 'trade' AND status = 'gap' ORDER BY start_time")
    spans = [(int(a.timestamp() * 10**6) * 1000, int(b.timestamp() * 10**6) * 1000) for a, b in
             gaps.select("start_time", "end_time").iter_rows()]  # fmt: skip
    outage = [(a, b) for a, b in spans if b > before and a < after]
    assert outage and min(a for a, _ in outage) <= before + S and max(b for _, b in outage) >= after - S
    assert "not connected" in gaps.get_column("reason").to_list()
    assert gaps.get_column("missing").sum() == lost_to - lost_from - 1

    candles = wh.query("SELECT * FROM candles")
    rows = candles.with_columns(pl.col("open_time").cast(pl.Datetime("ns", "UTC")).cast(pl.Int64)).iter_rows(named=True)
    over = [r for r in rows if r["open_time"] <= after and before < r["open_time"] + TIMEFRAMES[r["timeframe"]]]
    assert len(over) >= 3 and not any(r["complete"] for r in over)
    assert {r["timeframe"] for r in over} >= {"1m", "5m"}

    # the new connection was receiving before the quiet stretch (23:58:31 .. 00:01:01 in exchange time, shifted by
    # whole minutes with the replay)
    quiet_minute = 1723161540 * S + shift  # 23:59, wholly inside it
    assert after < quiet_minute - MIN
    flat = candles.filter(
        (pl.col("timeframe") == "1m")
        & (pl.col("open_time").cast(pl.Datetime("ns", "UTC")).cast(pl.Int64) == quiet_minute)
    )
    span = [
        pl.Series([quiet_minute + MIN]).cast(pl.Datetime("ns", "UTC")).item(),
        pl.Series([quiet_minute]).cast(pl.Datetime("ns", "UTC")).item(),
    ]
    states = wh.query(
        "SELECT status, reason FROM coverage WHERE channel = 'trade' AND start_time < ? AND end_time > ?", span
    ).rows()
    # whatever the replay's timing made of the stretch, the candle says what coverage says: complete only where
    # the whole minute is covered, and no flat candle over a gap (none, or one marked incomplete)
    if flat.height and flat.get_column("complete").item():
        assert states == [("covered", None)], states
        assert flat.select("trade_count", "volume").rows() == [(0, 0)]
        assert flat.get_column("open").item() == flat.get_column("close").item()
    else:
        assert flat.select("trade_count", "complete").rows() in ([], [(0, False)])
        assert any(status == "gap" for status, _ in states) and all(
            reason in ("clock jump", "silent") for status, reason in states if status == "gap"
        ), states
    # every frame that reached the collector landed exactly once
    raw = read_raw(lake, 0, 2**62)
    ws = raw.filter(pl.col("channel").is_in(["trade", "depth", "bookTicker"]))
    assert ws.select("conn_id", "seq").is_unique().all()
