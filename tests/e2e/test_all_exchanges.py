"""One `mdp ingest` collecting every exchange at once, each from its own `mdp replay` speaking that exchange's protocol
over a socket (subprocesses, as a user runs them), then one `mdp materialize` with the defaults users get (books on):
every frame the replays sent lands, and trades, candles and book snapshots come out for every exchange. The replays
run at real speed, as a live exchange would (the first 75 s of each recording: a minute closes for every exchange).

Recordings: Binance spot (hftbacktest, real), OKX (cryptofeed sample, real, 2022) and, per exchange, the capture its
own end-to-end test replays (`tests/data/<exchange>/`: real where a recording exists, else built from the
documentation, as that folder's README says). The ingestor's peak RSS and CPU are written to
``<tmp>/all_exchanges.json`` and printed (run with ``-s`` to see them)."""

from __future__ import annotations

import gzip
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pytest

from mdplatform.exchanges import get_exchange
from mdplatform.lake import read_raw
from mdplatform.warehouse import Warehouse

DATA = Path(__file__).resolve().parents[1] / "data"
MDP = [sys.executable, "-m", "mdplatform"]
ALL_TIME = (0, 1 << 62)
#: the trades' default skew (MDP_SKEW_S): dated further ahead of their receipt, they are quarantined
SKEW_NS = 10 * 10**9


@dataclass(frozen=True)
class Venue:
    exchange: str
    capture: str  # relative to the shared data folder ("shared:") or tests/data
    symbols: tuple[str, ...]
    channels: tuple[str, ...]
    rest: bool = False  # the collector is given the replay as its REST host (book snapshots)
    seconds: float = 75.0  # replay only the capture's first seconds (a minute closes for every exchange)
    #: the replay's speed: real (1) but where the recording's clock was far from the exchange's (HTX's runs a minute
    #: and more behind its trade times: live, they would lie ahead of everything received); 0: moved into the past
    speed: int = 1
    #: a minute closes within the recording; None: it depends on the second the replay starts at (HTX's spot
    #: recording is 30 s long and replayed at speed 0: its minutes close or not with the live clock's)
    candles: bool | None = True


#: every exchange, its spot market and a perpetual where a capture of one is at hand
VENUES = (
    Venue(
        "binance",
        "shared:binance-hftbacktest/spot/btcusdt_20240808.gz",
        ("BTCUSDT",),
        ("trade", "depth", "bookTicker"),
        rest=True,
    ),
    Venue(
        "binance-usdm",
        "shared:binance-hftbacktest/usdm/btcusdt_20240808.gz",
        ("BTCUSDT",),
        ("trade", "depth", "bookTicker"),
        rest=True,
    ),
    Venue(
        "okx",
        "shared:cryptofeed-samples/OKX.ws.1.0.gz",
        ("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"),
        ("trades", "books", "tickers"),
        rest=True,
    ),
    Venue(
        "bybit-linear",
        "bybit/bybit_linear_xrpusdt.ws.gz",
        ("XRPUSDT", "BTCUSDT"),
        ("publicTrade", "orderbook.500", "tickers", "kline.1"),
    ),
    Venue("coinbase", "coinbase/advanced-trade.ws.gz", ("BTC-USD", "ETH-USD"), ("market_trades", "level2", "ticker")),
    Venue(
        "kraken",
        "kraken/KRAKEN_V2.ws.1.0.gz",
        (
            "WAVES/EUR",
            "XMR/USD",
            "KSM/BTC",
            "GRT/ETH",
            "SC/EUR",
            "ETH/CHF",
            "OCEAN/BTC",
            "OMG/USD",
            "BTC/CHF",
            "ADA/BTC",
        ),
        ("trade", "book", "ticker"),
    ),
    Venue(
        "kucoin",
        "kucoin/KUCOIN.gap.gz",
        (
            "EQZ-BTC",
            "ANKR-BTC",
            "SNX-BTC",
            "FET-BTC",
            "BCHSV-USDT",
            "NRG-BTC",
            "CAPP-BTC",
            "DAPPT-BTC",
            "COV-BTC",
            "LTX-USDT",
        ),
        ("level2", "match", "ticker", "candles"),
        rest=True,
    ),
    Venue(
        "gateio",
        "gateio/gateio_spot_gap.ws.gz",
        ("OMG_USDT", "NEO_BTC", "DIS_USDT", "ZKS_ETH"),
        ("spot.trades", "spot.order_book_update", "spot.candlesticks", "spot.tickers"),
        rest=True,
    ),
    Venue(
        "htx",
        "htx/HUOBI.ws.44.0.gz",
        ("trioeth", "borusdt", "omgbtc", "xvgeth", "yfihusd", "zeneth", "dogeeth", "fil3susdt", "propyeth", "nesteth"),
        ("trade.detail", "depth.step0"),
        speed=0,
        candles=None,
    ),
    Venue(
        "htx-swap",
        "htx/HTX_SWAP.ws.hf.gz",
        ("BTC-USDT",),
        ("trade.detail", "depth.size_150.high_freq"),
    ),
    Venue(
        "mexc",
        "mexc/mexc_spot.ws.gz",
        ("BTCUSDT", "ETHUSDT"),
        (
            "spot@public.aggre.deals.v3.api.pb@100ms",
            "spot@public.aggre.depth.v3.api.pb@100ms",
            "spot@public.aggre.bookTicker.v3.api.pb@100ms",
        ),
        rest=True,
    ),
    Venue(
        "bitfinex",
        "bitfinex/BITFINEX.ws.cs.gz",
        ("tBFTUSD", "tIOTETH", "tDOGUSD", "tMNABTC", "tODEUSD", "tTESTBTC:TESTUSD", "tSNGUSD"),
        ("book", "trades", "ticker"),
    ),
)


def _path(venue: Venue, shared_data: Path, work: Path) -> Path:
    """The venue's capture, cut after its first ``seconds`` (by each line's receive time)."""
    path = shared_data / venue.capture[7:] if venue.capture.startswith("shared:") else DATA / venue.capture
    head = work / f"{venue.exchange}-{path.name}"
    first: float | None = None
    with gzip.open(path, "rt") as src, gzip.open(head, "wt") as dst:
        for line in src:
            t = _line_time(line)
            if t is not None:
                first = t if first is None else first
                if t - first > venue.seconds:
                    break
            dst.write(line)
    return head


def _line_time(line: str) -> float | None:
    """A capture line's receive time in seconds: hftbacktest ``<ns> {...}``, cryptofeed ``<url> <-> <s>`` or
    ``<s>: <frame>``."""
    head = line[:200].split(" ", 3)
    if head[0].isdigit() and len(head[0]) >= 18:
        return int(head[0]) / 1e9
    if len(head) > 2 and head[1] in ("<->", "<-", "->"):
        return float(head[2].rstrip(":"))
    if head[0].endswith(":"):
        return float(head[0][:-1])
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen([*MDP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _sent(proc: subprocess.Popen[str], lines: queue.Queue[str], deadline: float) -> int:
    """Frames the replay sent once it finished its recording (``REPLAY_SENT=``)."""
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert proc.poll() is None, "a replay server exited early"
            continue
        if line.startswith("REPLAY_SENT="):
            return int(line.split("=", 1)[1])
    raise AssertionError("a replay did not finish its recording in time")


def _usage(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a running process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm / 1024, (int(fields[11]) + int(fields[12])) / ticks


@pytest.mark.waits  # real speed: a minute of waiting for the recordings to play, little CPU
@pytest.mark.timeout(600)
def test_one_ingest_collects_every_exchange_and_materializes_them(tmp_path: Path, shared_data: Path) -> None:
    lake, work = tmp_path / "lake", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "MDP_LAKE": str(lake), "DAGSTER_HOME": str(work / "dagster")}
    replays: dict[str, tuple[subprocess.Popen[str], queue.Queue[str], int]] = {}
    ingest: subprocess.Popen[str] | None = None
    try:
        config = ["collectors:"]
        for v in VENUES:
            port = _free_port()
            capture = str(_path(v, shared_data, work))
            replay = ["replay", "--capture", capture, "--exchange", v.exchange, "--rebase", "--speed", str(v.speed)]
            proc, lines = _spawn([*replay, "--port", str(port)], env)
            replays[v.exchange] = (proc, lines, port)
            config += [
                f"  - exchange: {v.exchange}",
                f"    symbols: [{', '.join(v.symbols)}]",
                f"    channels: [{', '.join(v.channels)}]",
                f"    ws_url: ws://127.0.0.1:{port}",
            ]
            if v.rest:
                rest_path = urlsplit(get_exchange(v.exchange).rest_url or "").path
                config.append(f"    rest_url: http://127.0.0.1:{port}{rest_path}")
        for _, _, port in replays.values():
            _wait_port(port)
        (work / "ingest.yaml").write_text("\n".join(config) + "\n")
        status_file = work / "status.json"
        config_file, lake_dir = str(work / "ingest.yaml"), str(lake)
        collect = ["ingest", "--config", config_file, "--lake", lake_dir, "--status-file", str(status_file)]
        ingest, _ = _spawn([*collect, "--status-interval", "0.5"], env)
        deadline = time.monotonic() + 300
        sent = {x: _sent(p, q, deadline) for x, (p, q, _) in replays.items()}
        while time.monotonic() < deadline:
            status = _status(status_file)
            if status and status["messages_received"] >= sum(sent.values()):
                break
            time.sleep(0.5)
        rss_mb, cpu_s = _usage(ingest.pid)
        ingest.send_signal(signal.SIGINT)
        assert ingest.wait(timeout=120) == 0
    finally:
        for p in [*(r[0] for r in replays.values()), *([ingest] if ingest else [])]:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()

    # every frame the ingestor received landed once, under its exchange (beside them: the REST snapshots it asked
    # for, on connections "<conn>/rest"); every frame each replay sent (server pings included) was received (the
    # others: acks, pongs, and the snapshots a replay makes for a stream resubscribed after a forced gap)
    final = _status(status_file)
    assert final is not None
    received: dict[str, int] = {}
    for c in final["collectors"]:
        received[c["exchange"]] = received.get(c["exchange"], 0) + c["messages_received"]
    raw = read_raw(str(lake), *ALL_TIME)
    socket_rows = raw.filter(~pl.col("conn_id").str.ends_with("/rest"))
    assert dict(socket_rows.group_by("exchange").len().iter_rows()) == received
    short = {x: (received.get(x, 0), n) for x, n in sent.items() if received.get(x, 0) < n}
    assert not short, short
    figures = {"exchanges": len(VENUES), "frames": sum(sent.values()), "ingest_rss_mb": rss_mb, "ingest_cpu_s": cpu_s}
    (tmp_path / "all_exchanges.json").write_text(json.dumps(figures))
    print(f"\nALL_EXCHANGES {json.dumps(figures)}")

    out = subprocess.run([*MDP, "materialize", "--no-progress"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    wh = Warehouse(str(lake / "warehouse.duckdb"))
    # the hours `mdp materialize` covered (by default: the lake's, with its lateness before them)
    span = re.search(r"materialized \d+ hour\(s\) (\S+ \S+) \.\. (\S+ \S+) UTC", out.stdout)
    assert span is not None, out.stdout
    first, end = (datetime.strptime(t, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) for t in span.groups())
    for v in VENUES:
        exchange = get_exchange(v.exchange)
        mine = exchange.normalize_trades(raw.filter(pl.col("exchange") == v.exchange)).unique(["symbol", "trade_id"])
        # a trade snapshot on subscribe carries history (days old on a quiet Bitfinex pair): only the hours
        # materialized are in the warehouse, less trades dated ahead of their receipt beyond the skew (quarantined)
        ahead = (pl.col("ts") - pl.col("recv_ts")).dt.total_nanoseconds() > SKEW_NS
        expected = mine.filter(pl.col("ts") >= first, pl.col("ts") < end, ~ahead).height
        trades = wh.query("SELECT count(*) FROM trades WHERE exchange = ?", [v.exchange]).item()
        assert trades == expected > 0, v.exchange
        candles = wh.query("SELECT count(*) FROM candles WHERE exchange = ? AND timeframe = '1m'", [v.exchange]).item()
        assert v.candles is None or (candles > 0) == v.candles, v.exchange
        samples = wh.query("SELECT count(*) FROM book_snapshots WHERE exchange = ?", [v.exchange]).item()
        assert samples > 0, v.exchange
    # the consolidated book of a base holds the venues whose spot books were sampled at the same second
    venues = wh.query(
        "SELECT list_sort(list_distinct(flatten(list(exchanges)))), max(exchange_count) FROM consolidated_book "
        "WHERE base = 'BTC'"
    ).row(0)
    # (how many at once depends on when each book synced: at least two)
    assert venues[0] == ["binance", "coinbase", "mexc", "okx"] and venues[1] >= 2


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"replay server did not open port {port}")


def _status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())["status"]  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError):
        return None
