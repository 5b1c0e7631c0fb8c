"""`make demo`: the whole pipeline on the bundled real Binance capture, over a real local WebSocket.

1. `mdp replay --rebase --speed 0` serves the capture as a local Binance (WebSocket + REST depth snapshots);
2. `mdp ingest` collects it into the raw lake, exactly as it would from the exchange;
3. `mdp materialize` runs the Dagster assets (trades, candles, books, heatmaps + checks) for the hours covered;
4. the results are checked against the recording itself and summarized;
5. `env.sh` beside the lake is written: sourced in a new shell, it makes the README's commands work as typed on
   the demo lake (`mdp` on PATH, `MDP_LAKE`, and the lake's hours in `FROM`/`TO`, which move with every run:
   the live collector stamps frames with the real clock, so the replay shifts the recording to today).
No network beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify import MINUTE_NS, compare_candles, observed_span, recorded, reference_candles_1m

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "demo/data/binance-spot"
WORK = Path(os.environ.get("MDP_DEMO_DIR") or REPO / ".demo")  # wiped on every run
LAKE = WORK / "lake"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
MDP = [sys.executable, "-m", "mdplatform"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"replay server did not open port {port}")


def pump(proc: subprocess.Popen[str], lines: queue.Queue[str], prefix: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
        print(f"  [{prefix}] {line.rstrip()}", flush=True)


def spawn(name: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """Start an `mdp` command whose output is echoed with a prefix and queued for the demo to read."""
    proc = subprocess.Popen(
        [*MDP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump, args=(proc, lines, name), daemon=True).start()
    return proc, lines


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    # the demo rebuilds books and draws the heatmap pictures whatever the environment says (the tests turn them off)
    env = {**os.environ, "MDP_LAKE": str(LAKE), "DAGSTER_DISABLE_TELEMETRY": "1", "MDP_PICTURES": "1", "MDP_BOOKS": "1"}
    env.setdefault("DAGSTER_HOME", str(REPO / ".dagster"))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if not (Path(env["DAGSTER_HOME"]) / "dagster.yaml").exists():
        shutil.copy(REPO / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    captures = sorted(DATA.glob("*.gz"))
    started = time.monotonic()

    step(f"replaying {len(captures)} recorded files as a local Binance (rebased to look live)")
    port = free_port()
    replay, replay_lines = spawn(
        "replay",
        ["replay", *(a for c in captures for a in ("--capture", str(c))), "--rebase", "--speed", "0",
         "--port", str(port)],
        env,
    )  # fmt: skip
    wait_port(port, 60)

    step("collecting over the WebSocket into the raw lake (mdp ingest)")
    config = WORK / "ingest.yaml"
    config.write_text(
        "collectors:\n"
        "  - exchange: binance\n"
        f"    symbols: [{', '.join(SYMBOLS)}]\n"
        "    channels: [trade, depth, bookTicker]\n"
        f"    ws_url: ws://127.0.0.1:{port}\n"
        f"    rest_url: http://127.0.0.1:{port}/api/v3/depth\n"
    )
    status_file = WORK / "status.json"
    ingest, _ = spawn(
        "ingest",
        ["-v", "ingest", "--config", str(config), "--lake", str(LAKE), "--status-file", str(status_file),
         "--status-interval", "1"],
        env,
    )  # fmt: skip

    sent = shift_ns = None
    deadline = time.monotonic() + 300
    while sent is None and time.monotonic() < deadline:
        try:
            line = replay_lines.get(timeout=1)
        except queue.Empty:
            if replay.poll() is not None:
                raise SystemExit("replay server exited early") from None
            continue
        if line.startswith("REPLAY_SHIFT_NS="):
            shift_ns = int(line.split("=", 1)[1])
        elif line.startswith("REPLAY_SENT="):
            sent = int(line.split("=", 1)[1])
    if sent is None or shift_ns is None:
        raise SystemExit("replay did not finish in time")
    received = 0
    while time.monotonic() < deadline:
        if status_file.exists():
            try:
                status = json.loads(status_file.read_text())["status"]
                received = status["messages_received"]
            except (ValueError, KeyError):
                pass
        if received >= sent:
            break
        time.sleep(0.5)
    ingest.send_signal(signal.SIGINT)
    ingest.wait(timeout=120)
    replay.send_signal(signal.SIGINT)
    try:
        replay.wait(timeout=20)
    except subprocess.TimeoutExpired:
        replay.kill()
    if ingest.returncode != 0:
        raise SystemExit(f"ingest exited with {ingest.returncode}")

    step("materializing trades, candles, order books and heatmaps with Dagster (mdp materialize)")
    done = subprocess.run(
        [*MDP, "materialize", "--lake", str(LAKE)], check=True, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    print(done.stdout, end="")

    step("checking the results against the recording")
    failures = check(sent, shift_ns, captures)
    # the Great Expectations checks ran with the assets (their results are in the Dagster UI, `make dagster`)
    quality = re.search(r"quality checks: (\d+) passed, (\d+) failed", done.stdout)
    if quality is None or int(quality.group(1)) == 0 or int(quality.group(2)):
        failures.append(f"quality checks: {quality.group(0) if quality else 'no summary from mdp materialize'}")
    failures += check_books()
    summarize()
    print(
        f"\ndemo finished in {time.monotonic() - started:.0f}s; timestamps were shifted by "
        f"{shift_ns / MINUTE_NS:+.0f} min (REPLAY_SHIFT_NS={shift_ns})"
    )
    start, end = lake_hours()
    env_file = write_env(start, end, str(Path(env["DAGSTER_HOME"]).absolute()))
    shown = env_file.relative_to(REPO) if env_file.is_relative_to(REPO) else env_file
    print(
        f"\nThe demo lake's hours (UTC): --from {start} --to {end}\n"
        "Next, in a new shell at the repository's root:\n"
        f"  source {shown}   # mdp on PATH, MDP_LAKE: the demo lake, FROM={start} TO={end}\n"
        "  mdp sql \"select * from candles where timeframe = '1m' and complete order by open_time\"\n"
        "  mdp plot candles --exchange binance --symbol BTCUSDT --from $FROM --to $TO -o candles.png\n"
        "  make dagster   # the Dagster UI on the demo lake\n"
        '(every command of the README\'s "Using it" works this way, as typed)'
    )
    if failures:
        print("\nDEMO CHECKS FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nall demo checks passed")
    return 0


def lake_hours() -> tuple[str, str]:
    """The hours of exchange time the demo lake holds, as `--from`/`--to` take them (the end exclusive): they move
    with every run, because the replay shifts the recording to end just before it starts."""
    con = duckdb.connect(str(LAKE / "warehouse.duckdb"), read_only=True)
    first, last = con.execute("select epoch_ns(min(ts)), epoch_ns(max(ts)) from trades").fetchone() or (0, 0)
    hour = 3600 * 10**9

    def iso(ns: int) -> str:
        return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H")

    return iso(first // hour * hour), iso(last // hour * hour + hour)


def write_env(start: str, end: str, dagster_home: str) -> Path:
    """`env.sh` beside the lake: sourced in a new shell, the README's commands work as typed on the demo lake."""
    path = WORK / "env.sh"
    path.write_text(
        "# Written by `make demo` (demo/run.py). `source .demo/env.sh` (sh: `. .demo/env.sh`) in a new shell, then\n"
        "# type the README's commands: `mdp` on PATH, the demo lake as MDP_LAKE, and its hours in FROM and TO.\n"
        f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"\n'
        f"export MDP_LAKE={shlex.quote(str(LAKE.absolute()))}\n"
        f"export DAGSTER_HOME={shlex.quote(dagster_home)}\n"
        "# the demo's times are the recording's moved to today: healing them from Binance's real history would mix\n"
        "# in other trades, so healing is off\n"
        "export MDP_REST_URL=none\n"
        f"export FROM={start} TO={end}  # the demo lake's hours (UTC): --from $FROM --to $TO\n"
    )
    return path


def check(sent: int, shift_ns: int, captures: list[Path]) -> list[str]:
    failures: list[str] = []
    con = duckdb.connect(str(LAKE / "warehouse.duckdb"), read_only=True)
    raw = duckdb.sql(
        f"select count(*) from read_parquet('{LAKE}/raw/**/*.parquet', hive_partitioning = true) "
        "where channel not in ('depthSnapshot', 'control')"
    ).fetchall()
    raw_frames = raw[0][0]
    print(f"  raw frames in the lake: {raw_frames:,} (replay sent {sent:,})")
    if raw_frames != sent:
        failures.append(f"raw frames {raw_frames} != sent {sent}")
    trades_by_symbol, first_e, last_e = recorded(captures, shift_ns)
    fields = (
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trade_count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "vwap",
        "complete",
    )
    for symbol, trades in trades_by_symbol.items():
        norm = f"{symbol[:-4]}-{symbol[-4:]}"
        got = con.execute(
            "select count(*), count(distinct trade_id), sum(size) from trades "
            "where exchange = 'binance' and symbol = ?",
            [norm],
        ).fetchone()
        volume = sum(t[3] for t in trades)
        print(f"  trades {norm}: {got[0] if got else 0:,} in DuckDB, {len(trades):,} in the recording")
        if not got or got[0] != len(trades) or got[1] != len(trades) or got[2] != volume:
            failures.append(f"trades {norm}: {got} != {len(trades)} trades of {volume}")
        rows = con.execute(
            f"select epoch_ns(open_time), {', '.join(fields)} from candles "
            "where exchange = 'binance' and symbol = ? and timeframe = '1m' order by open_time",
            [norm],
        ).fetchall()
        ours = {int(r[0]): dict(zip(fields, r[1:], strict=True)) for r in rows}
        reference = reference_candles_1m(trades, *observed_span(trades, first_e, last_e))
        problems = compare_candles(ours, reference)
        complete = sum(1 for c in ours.values() if c["complete"])
        print(
            f"  1m candles {norm}: {len(ours)} published ({complete} complete), {len(reference)} independently "
            f"computed, {'equal field by field, exactly' if not problems else 'DIFFERENT'}"
        )
        failures += [f"{norm}: {p}" for p in problems[:10]]
    return failures


def check_books() -> list[str]:
    """The rebuilt books against the recording's own bookTicker stream: every book sample whose update id a
    bookTicker also carries has that bookTicker's best bid/ask and sizes; heatmaps, pictures, consolidated view."""
    failures: list[str] = []
    con = duckdb.connect(str(LAKE / "warehouse.duckdb"), read_only=True)
    ticker = duckdb.sql(
        f"select symbol, payload from read_parquet('{LAKE}/raw/**/*.parquet', hive_partitioning = true) "
        "where channel = 'bookTicker'"
    ).pl()
    tickers = {}
    for symbol, payload in ticker.iter_rows():
        d = json.loads(payload)["data"]
        tickers[(f"{symbol[:-4]}-{symbol[-4:]}", int(d["u"]))] = tuple(float(d[k]) for k in ("b", "B", "a", "A"))
    samples = con.execute(
        "select symbol, update_id, bid_price, bid_size, ask_price, ask_size from book_snapshots"
    ).fetchall()
    for symbol in sorted({s[0] for s in samples}):
        mine = [s for s in samples if s[0] == symbol]
        shared = [s for s in mine if (symbol, s[1]) in tickers]
        equal = [s for s in shared if tuple(s[2:]) == tickers[(symbol, s[1])]]
        print(
            f"  book {symbol}: {len(mine)} one-second samples; {len(shared)} share an update id with a bookTicker, "
            f"{len(equal)} of them equal in best bid/ask and sizes"
        )
        if not shared or len(equal) != len(shared):
            failures.append(f"book {symbol}: {len(equal)} of {len(shared)} samples equal their bookTicker")
    if not samples:
        failures.append("no book snapshots")
    heat = con.execute(
        "select exchange, step, count(*), count(distinct ts) from book_heatmap group by all order by all"
    ).fetchall()
    print("  book heatmap rows (exchange, step, rows, steps): " + ", ".join(str(h) for h in heat))
    if {(h[0], h[1]) for h in heat} != {("binance", "1s"), ("binance", "1m"), ("*", "1s"), ("*", "1m")}:
        failures.append(f"book heatmap steps: {heat}")
    (consolidated,) = con.execute("select count(*) from consolidated_book").fetchone() or (0,)
    (trade_heat,) = con.execute("select count(*) from trade_heatmap").fetchone() or (0,)
    pictures = sorted((LAKE / "pictures").glob("*heatmap/**/*.png"))
    print(f"  consolidated book steps: {consolidated}; trade heatmap rows: {trade_heat}; pictures: {len(pictures)}")
    for p in pictures:
        print(f"    {p.relative_to(LAKE)}")
    if not consolidated or not trade_heat or not pictures:
        failures.append(f"consolidated {consolidated}, trade heatmap {trade_heat}, pictures {len(pictures)}")
    return failures


def summarize() -> None:
    con = duckdb.connect(str(LAKE / "warehouse.duckdb"), read_only=True)
    print("\n  candles per symbol and timeframe:")
    con.sql(
        "select exchange, symbol, timeframe, count(*) as candles, count(*) filter (where complete) as complete, "
        "min(open_time) as first_open, max(close_time) as last_close, sum(trade_count) as trades from candles "
        "group by exchange, symbol, timeframe "
        "order by exchange, symbol, list_position(['1m','5m','15m','1h','4h','1d'], timeframe)"
    ).show(max_rows=50)
    print("  what was observed (coverage gaps of the trade streams):")
    con.sql(
        "select exchange, symbol, channel, start_time, end_time, reason from coverage_gaps "
        "where channel = 'trade' order by symbol, start_time"
    ).show(max_rows=20)


if __name__ == "__main__":
    sys.exit(main())
