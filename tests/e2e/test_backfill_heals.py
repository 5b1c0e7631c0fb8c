"""Healing from REST history, end to end: a recording with minutes cut out goes through `mdp import-capture` and
`mdp materialize`; `mdp backfill` then fetches what is missing from `mdp replay` of the full recording (the
exchange's real REST endpoints, served from the recording) and re-materializes what changed. Every full minute is
then complete and equal, field by field, to the candles of the full recording, the 5m candles over the cut too.

Real recordings: Binance spot BTCUSDT and USD-M BTCUSDT (hftbacktest, `trade` stream, REST `historicalTrades`
paged by id after the last trade received), and OKX (cryptofeed sample, `trades`, REST `history-trades` paged
back in time from the end of the gap).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from candle_reference import H00, H23, MIN, candle_rows, read_lines, spot_files, usdm_file, write_lines
from click.testing import CliRunner

from assets.backfill_cli import backfill as backfill_cli
from assets.cli import materialize as materialize_cli
from mdplatform.capture import import_capture
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TIMEFRAMES
from mdplatform.warehouse import Warehouse

S = 10**9
OKX_T0 = 1652459225 * S  # the OKX capture's first second (2022-05-13 16:27:05 UTC)


@contextmanager
def replay(paths: list[Path], **kwargs: object) -> Iterator[ReplayServer]:
    """A ReplayServer running on its own event loop thread (the CLI under test blocks the caller's)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ReplayServer(paths, verbose=False, **kwargs)  # type: ignore[arg-type]
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(60)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@dataclass(frozen=True)
class Lake:
    root: str

    def candles(self) -> pl.DataFrame:
        return Warehouse(str(Path(self.root) / "warehouse.duckdb")).query(
            "SELECT * FROM candles ORDER BY symbol, timeframe, open_time"
        )

    def coverage(self) -> pl.DataFrame:
        return Warehouse(str(Path(self.root) / "warehouse.duckdb")).query(
            "SELECT * FROM coverage ORDER BY symbol, channel, start_time"
        )

    def trades(self) -> pl.DataFrame:
        return Warehouse(str(Path(self.root) / "warehouse.duckdb")).query(
            "SELECT * EXCLUDE (recv_ts) FROM trades ORDER BY symbol, ts, trade_id"
        )


def imported(lake: Path, files: list[Path], exchange: str) -> Lake:
    import_capture(files, exchange, str(lake))
    result = CliRunner().invoke(materialize_cli, ["--lake", str(lake), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Lake(str(lake))


def cut(files: list[Path], lo: int, hi: int, tmp: Path) -> list[Path]:
    return [write_lines([(r, f) for r, f in read_lines(p) if not lo <= r < hi], tmp / p.name) for p in files]


def keyed(candles: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, object]]:
    return {(r["symbol"], r["timeframe"], r["open_time"]): r for r in candle_rows(candles)}


def backfill(lake: Lake, server: ReplayServer, exchange: str, start: str, end: str) -> str:
    args = ["--from", start, "--to", end, "--exchange", exchange, "--rest-url", server.rest_base]
    result = CliRunner().invoke(backfill_cli, [*args, "--lake", lake.root, "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


CASES = {
    # local receive times cut out, as if the collector had been disconnected
    "binance spot, inside hour 23": ("binance", (H23 + 56 * MIN + 10 * S, H23 + 58 * MIN + 40 * S)),
    "binance spot, across midnight": ("binance", (H23 + 58 * MIN + 30 * S, H00 + 1 * MIN + 30 * S)),
    "binance usdm": ("binance-usdm", (H23 + 55 * MIN + 40 * S, H23 + 57 * MIN + 50 * S)),
}


@pytest.fixture(scope="module")
def full_spot(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, dagster_home: str) -> Lake:
    return imported(tmp_path_factory.mktemp("full-spot") / "lake", spot_files(shared_data), "binance")


@pytest.mark.parametrize("case", list(CASES), ids=[c.replace(" ", "-").replace(",", "") for c in CASES])
def test_backfill_makes_the_cut_minutes_whole(
    case: str, full_spot: Lake, tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    exchange, (lo, hi) = CASES[case]
    source = spot_files(shared_data) if exchange == "binance" else [usdm_file(shared_data)]
    full = full_spot if exchange == "binance" else imported(tmp_path / "full", source, exchange)
    lake = imported(tmp_path / "lake", cut(source, lo, hi, tmp_path), exchange)
    before = keyed(lake.candles())
    whole = keyed(full.candles())
    over_cut = [k for k in whole if k[2] < hi and lo < k[2] + TIMEFRAMES[k[1]] and whole[k]["complete"]]
    assert over_cut and not any(before.get(k, {}).get("complete") for k in over_cut)

    with replay(source) as server:
        output = backfill(lake, server, exchange, "2024-08-08T23:00", "2024-08-09T01:00")
        assert server.rest_requests > 0
    assert re.search(r"filled 1 of \d+ gap", output), output

    after = keyed(lake.candles())
    # every candle complete in the full recording is complete again and equal to it, the ones over the cut too
    complete = {k: v for k, v in whole.items() if v["complete"]}
    assert {k: after.get(k) for k in complete} == complete
    assert {k for k, v in after.items() if v["complete"]} == set(complete)
    assert {k[1] for k in over_cut} >= {"1m", "5m"}
    # the trades are the full recording's, each once
    assert lake.trades().equals(full.trades())
    # coverage says the stretch was backfilled
    healed = lake.coverage().filter(pl.col("detail").str.contains("backfilled", literal=True))
    assert healed.height >= 1 and set(healed.get_column("status")) == {"covered"}


def test_okx_capture_healed_from_history_trades(tmp_path: Path, shared_data: Path, dagster_home: str) -> None:
    """The OKX capture is 12 s long: 4 s of it are cut out as a reconnect (the connection's line, its subscribe
    requests and OKX's acks are repeated when the cut ends, as a collector reconnecting would record them): the
    trades of the three instruments, and their candles, are the full capture's again after the backfill."""
    source = [shared_data / "cryptofeed-samples" / "OKX.ws.1.0.gz"]
    full = imported(tmp_path / "full", source, "okx")
    lo, hi = OKX_T0 + 4 * S, OKX_T0 + 8 * S
    lake = imported(tmp_path / "lake", reconnect_cryptofeed(source[0], lo, hi, tmp_path), "okx")
    missing = full.trades().height - lake.trades().height
    assert missing > 0
    gaps = lake.coverage().filter(
        (pl.col("channel") == "trades")
        & (pl.col("status") == "gap")
        & (pl.col("start_time").dt.epoch("ns") < hi)
        & (pl.col("end_time").dt.epoch("ns") > lo)
    )
    assert sorted(gaps.get_column("reason")) == ["not connected"] * 3, gaps  # one per instrument
    with replay(source) as server:
        output = backfill(lake, server, "okx", "2022-05-13T16:00", "2022-05-13T17:00")
        assert server.rest_requests > 0
    # the reconnect gap of each instrument is filled; what came before the capture cannot be (the replay's history
    # starts with the capture), and says so
    assert len(re.findall(r"16:27:0\d\.?\d*\.\.16:27:1\d UTC: \d+ trades in \d+ pages; filled", output)) == 3, output
    assert lake.trades().equals(full.trades())
    # the capture's candles again; the backfill of what came before the capture proved its last seconds (OKX pushes
    # a trade from before the subscription), which adds partial, incomplete candles there, and nothing else
    got, whole = keyed(lake.candles()), keyed(full.candles())
    assert {k: got.get(k) for k in whole} == whole
    extra = {k: v for k, v in got.items() if k not in whole}
    assert all(not v["complete"] and v["close_time"] <= lo for v in extra.values()), extra


def reconnect_cryptofeed(path: Path, lo: int, hi: int, tmp: Path) -> list[Path]:
    """The cryptofeed capture with the frames received in [lo, hi) lost to a reconnect: the connection line, the
    subscribe requests and the acks are recorded again at ``hi``."""
    import gzip

    with gzip.open(path, "rt") as src:
        lines = src.readlines()
    stamp = re.compile(r"^(?:(\S+) (<->|<-) )?(\d+\.\d+)(:?)")

    def at(line: str) -> int:
        m = stamp.match(line)
        assert m, line
        return int(float(m.group(3)) * S)

    def moved(line: str) -> str:
        return stamp.sub(lambda m: m.group(0).replace(m.group(3), f"{hi / S:.7f}"), line, count=1)

    session = [ln for ln in lines if " <-> " in ln or " <- " in ln or '"event":"subscribe"' in ln]
    out = tmp / path.name
    with gzip.open(out, "wt") as dst:
        dst.writelines(ln for ln in lines if at(ln) < lo)
        dst.writelines(moved(ln) for ln in session)
        dst.writelines(ln for ln in lines if at(ln) >= hi and ln not in session)
    return [out]
