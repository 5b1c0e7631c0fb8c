"""Collectors sharded over hosts (docs/scaling.md), against one replayed exchange, into one S3 lake (a local moto
server), beside an unsharded ingestor running the same config from the same replay into another prefix:

- two ingestors run the config as shards 0/2 and 1/2, each with its own journal and writer id: what they landed
  together equals what the unsharded one landed, stream by stream and frame for frame; each (exchange, symbol)'s
  streams were landed by exactly one shard, the one the config's hashing names, in files named after its writer;
- two more run it with ``replicas: 2`` (every pair on both): each frame is landed twice, and the trades and the
  rebuilt books read from their lake equal the unsharded lake's (duplicate trades dropped, duplicate depth diffs
  stale under the update-id rules, a second snapshot ignored while in sync)."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import re
import socket
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import boto3
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from s3fs import S3FileSystem

from mdplatform._time import HOUR_NS, floor_ns
from mdplatform.book import lake_book_samples
from mdplatform.collector import Shard, load_config
from mdplatform.exchanges import get_exchange
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import trades_for_window
from mdplatform.transforms._normalize import registry_normalizer

ALL_TIME = (0, 2**62)
BUCKET = "mdp-lake"
SHARDED = f"s3://{BUCKET}/lake"
UNSHARDED = f"s3://{BUCKET}/unsharded"
REPLICATED = f"s3://{BUCKET}/replicated"
#: lines of each recording replayed (about two minutes of the BTC and ETH spot streams)
LINES = 8_000
SYMBOLS = ("BTCUSDT", "ETHUSDT")
CHANNELS = ("trade", "depth", "bookTicker")


def _head(capture: Path, folder: Path) -> Path:
    """The first ``LINES`` lines of a recording (its first minutes: the inline depth snapshot comes early)."""
    target = folder / capture.name
    with gzip.open(capture, "rt") as src, gzip.open(target, "wt") as dst:
        dst.writelines(itertools.islice(src, LINES))
    return target


def _write_config(path: Path, server: ReplayServer, **top: object) -> Path:
    collector = {
        "exchange": "binance",
        "symbols": list(SYMBOLS),
        "channels": list(CHANNELS),
        "ws_url": server.ws_url,
        "rest_url": server.rest_url,
    }
    path.write_text(yaml.safe_dump({"collectors": [collector], **top}))
    return path


def _streams(raw: pl.DataFrame) -> dict[tuple[str, str], list[str]]:
    """Each WebSocket stream's frames, in the order its connection received them."""
    ws = raw.filter(pl.col("channel") != "depthSnapshot").sort("conn_id", "seq")
    return {(ch, sym): group["payload"].to_list() for (ch, sym), group in ws.group_by("channel", "symbol")}


@pytest.mark.timeout(180)
def test_sharded_and_replicated_collectors_over_one_replay_into_one_s3_lake(
    tmp_path: Path, shared_data: Path, moto_s3: dict[str, str]
) -> None:
    boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"]).create_bucket(Bucket=BUCKET)
    captures = [_head(shared_data / f"binance-hftbacktest/spot/{s}usdt_20240808.gz", tmp_path) for s in ("btc", "eth")]

    async def scenario() -> tuple[list[Ingestor], int]:
        # five clients, one connection each: the replay starts once all are subscribed, so each gets every frame of
        # its streams from the first one (rebased: exchange times just before now, for the trade and book windows)
        async with ReplayServer(captures, speed=0, rebase=True, subscribers=5, verbose=False) as server:
            path = _write_config(tmp_path / "ingest.yaml", server)
            doubled = _write_config(tmp_path / "replicated.yaml", server, shard={"index": 0, "count": 2, "replicas": 2})
            configs = [
                load_config(path, shard="0/2"),
                load_config(path, shard="1/2"),
                load_config(path),
                load_config(doubled),
                load_config(doubled, shard="1/2"),  # --shard keeps the config's replicas
            ]
            lakes = (SHARDED, SHARDED, UNSHARDED, REPLICATED, REPLICATED)
            # each ingestor its own journal, as each host has its own disk
            ingestors = [
                Ingestor(replace(c, journal=str(tmp_path / f"journal-{i}")), lake=lake)
                for i, (c, lake) in enumerate(zip(configs, lakes, strict=True))
            ]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(i.run(stop=stop)) for i in ingestors]
            await server.wait_finished(timeout=90)
            received = lambda: sum(i.manager.get_status()["messages_received"] for i in ingestors)  # noqa: E731
            for _ in range(600):
                if received() >= server.sent:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
            return ingestors, server.sent

    ingestors, sent = asyncio.run(scenario())
    shard0, shard1 = ingestors[:2]
    statuses = [i.status() for i in ingestors]
    assert sum(s["messages_received"] for s in statuses) == sent

    # the config's two pairs split over the two shards (the hashing is deterministic: this split is what every host
    # computes from this config), each shard's collector narrowed to its pair with every channel
    assert [c.symbols for c in shard0.config.assigned()] == [("ETHUSDT",)]
    assert [c.symbols for c in shard1.config.assigned()] == [("BTCUSDT",)]
    assert all(c.channels == CHANNELS for s in (shard0, shard1) for c in s.config.assigned())
    assert all([c.symbols for c in i.config.assigned()] == [SYMBOLS] for i in ingestors[3:])  # both replicas
    assert [s["shard"] for s in statuses] == [
        {"index": 0, "count": 2, "replicas": 1},
        {"index": 1, "count": 2, "replicas": 1},
        None,
        {"index": 0, "count": 2, "replicas": 2},
        {"index": 1, "count": 2, "replicas": 2},
    ]
    # each its own writer id (the host name and the shard in it) and journal, left empty: everything is in the lake
    writers = [i.writer.writer_id for i in ingestors]
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())
    assert [w.split("-", 1)[1].rsplit("-", 1)[0] for w in writers[:3]] == [f"{host}-s0of2", f"{host}-s1of2", host]
    assert len(set(writers)) == 5
    journals = [i.writer.journal.directory for i in ingestors if i.writer.journal is not None]
    assert journals == [str(tmp_path / f"journal-{i}") for i in range(5)]
    assert not [p for j in journals for p in Path(j).rglob("*.wal")]

    sharded, unsharded = read_raw(SHARDED, *ALL_TIME), read_raw(UNSHARDED, *ALL_TIME)
    # the union of the shards' frames is the unsharded ingestor's, stream by stream, in order
    got, want = _streams(sharded), _streams(unsharded)
    assert set(want) == {(ch, sym) for ch in CHANNELS for sym in SYMBOLS}
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in want.items()}
    assert got == want
    assert sum(map(len, want.values())) * 4 == sent
    # one REST snapshot per book, landed by the shard that has the book
    snapshots = sharded.filter(pl.col("channel") == "depthSnapshot")
    assert sorted(snapshots["symbol"]) == sorted(unsharded.filter(pl.col("channel") == "depthSnapshot")["symbol"])

    # every stream came through one connection, of the shard the hashing names for its pair
    shard_of_conn = {
        conn["conn_id"]: index
        for index, status in enumerate(statuses[:2])
        for collector in status["collectors"]
        for conn in collector["connections"]
    }
    conns = sharded.filter(pl.col("channel") != "depthSnapshot").group_by("symbol").agg(pl.col("conn_id").unique())
    owner = {sym: {shard_of_conn[c] for c in ids} for sym, ids in conns.iter_rows()}
    assert owner == {"ETHUSDT": {0}, "BTCUSDT": {1}}
    assert Shard(0, 2).owners("binance", "BTCUSDT") == (1,) and Shard(0, 2).owners("binance", "ETHUSDT") == (0,)
    # the events say the same: each stream subscribed on its owner's connection only
    subscribed = (
        read_events(SHARDED, *ALL_TIME)
        .filter(pl.col("kind") == "subscribed")
        .group_by("symbol")
        .agg(pl.col("conn_id").unique())
    )
    assert {sym: {shard_of_conn[c] for c in ids} for sym, ids in subscribed.iter_rows()} == owner

    # the files say who wrote them: each part file holds the rows of its writer's shard only, both writers landed
    # files and manifests, and the frames in the files add up to the frames read
    fs = S3FileSystem(client_kwargs={"endpoint_url": moto_s3["MDP_S3_ENDPOINT"]})
    rows_by_writer: dict[int, int] = defaultdict(int)
    for key in fs.glob(f"{BUCKET}/lake/raw/**/*.parquet"):
        (index,) = [i for i, w in enumerate(writers[:2]) if f"part-{w}-" in key]
        with fs.open(key, "rb") as fh:
            table = pq.read_table(fh, columns=["conn_id"])
        conn_ids = {c.split("/")[0] for c in table.column("conn_id").to_pylist()}
        assert {shard_of_conn[c] for c in conn_ids} == {index}, key
        rows_by_writer[index] += table.num_rows
    assert sum(rows_by_writer.values()) == sharded.height and set(rows_by_writer) == {0, 1}
    manifests = fs.glob(f"{BUCKET}/lake/_landed/**/*.json")
    assert {i for i, w in enumerate(writers[:2]) for m in manifests if f"-{w}-" in m} == {0, 1}

    # replicas 2: every frame twice (once per replica), the same trades and books as the unsharded lake
    replicated = read_raw(REPLICATED, *ALL_TIME)
    doubled = _streams(replicated)
    assert {k: len(v) for k, v in doubled.items()} == {k: 2 * len(v) for k, v in want.items()}
    assert replicated["conn_id"].n_unique() == 4  # two connections and their REST snapshots
    receipts = unsharded["recv_ts"].cast(pl.Int64).to_list()
    first, last = min(receipts), max(receipts)
    hours = range(floor_ns(first - HOUR_NS, HOUR_NS), last + 1, HOUR_NS)  # the exchange times are before the receipts
    trades = 0
    for hour in hours:
        one, two = (
            trades_for_window(
                read_raw(lake, hour - HOUR_NS, hour + 2 * HOUR_NS),
                hour,
                hour + HOUR_NS,
                HOUR_NS,
                normalize=registry_normalizer,
                skew_ns=10**10,
            )
            for lake in (UNSHARDED, REPLICATED)
        )
        assert two.duplicates == one.trades.height and one.duplicates == 0
        same = [c for c in TRADES if c != "recv_ts"]  # the first receipt's time: another ingestor's clock
        assert two.trades.select(same).equals(one.trades.select(same))
        trades += one.trades.height
    assert trades == sum(len(want[("trade", symbol)]) for symbol in SYMBOLS)  # one trade per `trade` frame
    window = (hours[0], hours[-1] + HOUR_NS)
    sampled = 0
    for symbol in SYMBOLS:
        a, b = (
            lake_book_samples(lake, get_exchange("binance"), symbol, *window, lateness_ns=HOUR_NS)
            for lake in (UNSHARDED, REPLICATED)
        )
        assert b.samples.equals(a.samples) and b.invalid.equals(a.invalid)
        sampled += a.samples.height
    assert sampled > 200, sampled  # 250: about two minutes of each book, every second
