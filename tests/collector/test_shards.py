"""Sharding one collector config over several ingestors (docs/scaling.md): which shard collects which (exchange,
symbol), the writer id and journal each shard gets, and the one-line errors of a bad shard. The ingestors collecting
from one replay into one S3 lake: tests/e2e/test_sharded_collectors.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdplatform.cli import cli
from mdplatform.collector import ConfigError, ExchangeCollectorConfig, IngestConfig, Shard, load_config
from mdplatform.ingest import Ingestor, journal_dir, writer_id
from mdplatform.lake import JournalError

BASES = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "TRX", "BCH", "UNI", "ATOM", "NEAR")
#: four venues' spot books of fifteen bases: 60 (exchange, symbol) pairs, 180 streams
COLLECTORS = (
    ExchangeCollectorConfig("binance", tuple(f"{b}USDT" for b in BASES), ("trade", "depth", "bookTicker")),
    ExchangeCollectorConfig("binance-usdm", tuple(f"{b}USDT" for b in BASES), ("aggTrade", "depth")),
    ExchangeCollectorConfig("okx", tuple(f"{b}-USDT" for b in BASES), ("trades", "books", "tickers")),
    ExchangeCollectorConfig("okx", tuple(f"{b}-USDT-SWAP" for b in BASES), ("trades",)),
)


def _streams(configs: tuple[ExchangeCollectorConfig, ...]) -> list[tuple[str, str, str]]:
    return [(c.exchange, s, ch) for c in configs for s in c.symbols for ch in c.channels]


@pytest.mark.parametrize(("count", "replicas"), [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (3, 2), (4, 2), (5, 3)])
def test_every_stream_is_collected_by_exactly_replicas_shards(count: int, replicas: int) -> None:
    every = _streams(COLLECTORS)
    collected: list[tuple[str, str, str]] = []
    for index in range(count):
        shard = Shard(index, count, replicas)
        mine = IngestConfig(COLLECTORS, shard=shard).assigned()
        collected += _streams(mine)
        # a pair keeps every channel its entry lists, on one collector entry (so on its connections)
        for cfg in mine:
            (source,) = [c for c in COLLECTORS if c.exchange == cfg.exchange and set(cfg.symbols) <= set(c.symbols)]
            assert cfg.channels == source.channels and cfg.ws_url == source.ws_url
            assert all(shard.owns(cfg.exchange, s) for s in cfg.symbols)
    assert sorted(collected) == sorted(every * replicas)
    # owners are distinct shards, the same whichever shard asks
    for exchange, symbol, _ in every:
        owners = Shard(0, count, replicas).owners(exchange, symbol)
        assert len(set(owners)) == replicas and owners == Shard(count - 1, count, replicas).owners(exchange, symbol)


def test_the_hash_spreads_pairs_and_a_new_shard_takes_only_what_it_wins() -> None:
    pairs = {(c.exchange, s) for c in COLLECTORS for s in c.symbols}
    for count in (2, 3, 4):
        loads = [sum(Shard(i, count).owns(*p) for p in pairs) for i in range(count)]
        assert sum(loads) == len(pairs)
        # by hash, not dealt: 60 pairs over 4 shards are 14, 11, 22 and 13 (docs/scaling.md says so)
        assert all(0.6 < load * count / len(pairs) < 1.5 for load in loads), loads
        # rendezvous hashing: going to count + 1 shards moves pairs to the new shard only, about 1/(count + 1)
        before = {p: Shard(0, count).owners(*p) for p in pairs}
        after = {p: Shard(0, count + 1).owners(*p) for p in pairs}
        moved = [p for p in pairs if before[p] != after[p]]
        assert all(after[p] == (count,) for p in moved)
        assert 0.5 < len(moved) * (count + 1) / len(pairs) < 1.5


def test_the_config_and_the_command_line_give_the_shard(tmp_path: Path) -> None:
    path = tmp_path / "ingest.yaml"
    path.write_text(
        "collectors:\n  - exchange: binance\n    symbols: [BTCUSDT, ETHUSDT]\n    channels: [trade]\n"
        "  - exchange: okx\n    symbols: [BTC-USDT, ETH-USDT]\n    channels: [trades]\n"
        "shard: {index: 1, count: 2, replicas: 2}\nwriter: collector-a\n"
    )
    config = load_config(path)
    assert config.shard == Shard(1, 2, 2) and config.writer == "collector-a"
    assert _streams(config.assigned()) == _streams(config.collectors)  # two replicas of two shards: everything
    # --shard I/N replaces index and count, keeping the config's replicas
    assert load_config(path, shard="0/3").shard == Shard(0, 3, 2)
    path.write_text(path.read_text().replace("shard: {index: 1, count: 2, replicas: 2}", "shard: 1/2"))
    one = load_config(path)
    assert one.shard == Shard(1, 2, 1)
    assert sorted(_streams(one.assigned()) + _streams(load_config(path, shard="0/2").assigned())) == sorted(
        _streams(one.collectors)
    )


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        ("2/2", "shard index must be in 0..1 for 2 shards, not 2"),
        ("1/0", "shard count must be >= 1, not 0"),
        ("one/two", "shard must be INDEX/COUNT (e.g. 0/3, indexes from 0), not 'one/two'"),
        ("-1/2", "shard must be INDEX/COUNT"),
        ({"index": 0, "count": 2, "replicas": 3}, "shard replicas must be in 1..2 for 2 shards, not 3"),
        ({"index": 0, "count": 2, "replica": 2}, "shard needs 'index' and 'count' (and optionally 'replicas')"),
        ({"index": True, "count": 2}, "shard index must be a whole number, not True"),
        ({"index": 0, "count": 2.5}, "shard count must be a whole number, not 2.5"),
    ],
)
def test_a_bad_shard_is_a_one_line_error_naming_the_file(tmp_path: Path, shard: object, message: str) -> None:
    path = tmp_path / "ingest.yaml"
    path.write_text(
        "collectors:\n  - exchange: binance\n    symbols: [BTCUSDT, ETHUSDT]\n    channels: [trade]\n"
        + (f"shard: {shard!r}\n" if isinstance(shard, str) else f"shard: {dict(shard)!r}\n".replace("'", ""))  # type: ignore[call-overload]
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {message}") and "\n" not in str(err.value)


def test_a_shard_with_nothing_to_collect_and_a_bad_writer_name_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ingest.yaml"
    path.write_text("collectors:\n  - exchange: binance\n    symbols: [BTCUSDT]\n    channels: [trade]\n")
    (owner,) = Shard(0, 2).owners("binance", "BTCUSDT")
    assert load_config(path, shard=f"{owner}/2").assigned()[0].symbols == ("BTCUSDT",)
    with pytest.raises(ConfigError, match=r"shard 1/2 collects nothing|shard 0/2 collects nothing"):
        load_config(path, shard=f"{1 - owner}/2")
    path.write_text(path.read_text() + "writer: my host\n")
    with pytest.raises(ConfigError, match=r"writer must be 1-63 letters, digits.*not 'my host'"):
        load_config(path)


def test_mdp_ingest_takes_the_shard_from_the_option_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ingest.yaml"
    path.write_text("collectors:\n  - exchange: binance\n    symbols: [BTCUSDT]\n    channels: [trade]\n")
    runner = CliRunner()
    got = runner.invoke(cli, ["ingest", "--config", str(path), "--shard", "3/2"])
    assert got.exit_code == 1
    assert got.output.strip() == f"Error: {path}: shard index must be in 0..1 for 2 shards, not 3"
    got = runner.invoke(cli, ["ingest", "--config", str(path)], env={"MDP_SHARD": "0/0"})
    assert got.exit_code == 1 and got.output.strip() == f"Error: {path}: shard count must be >= 1, not 0"


def test_each_shard_has_a_writer_id_naming_it_and_co_located_shards_need_their_own_journals(tmp_path: Path) -> None:
    config = IngestConfig(COLLECTORS, shard=Shard(1, 3), writer="collector-a")
    first, second = writer_id(config), writer_id(config)
    assert re.fullmatch(r"\d{8}T\d{6}-collector-a-s1of3-[0-9a-f]{8}", first), first
    assert first != second  # a restarted ingestor never takes its predecessor's journal folder for its own
    # the journal does not depend on the shard (a host replays what its journal holds whatever shard it runs next):
    # two shards on one host with the same journal, the second refuses to start and says why
    lake = str(tmp_path / "lake")
    assert journal_dir(None, lake) == f"{lake}-journal"
    ingestor = Ingestor(IngestConfig(COLLECTORS, shard=Shard(0, 2)), lake=lake)
    try:
        with pytest.raises(JournalError, match=r"in use by another ingestor .*give each ingestor its own journal"):
            Ingestor(IngestConfig(COLLECTORS, shard=Shard(1, 2)), lake=lake)
        Ingestor(IngestConfig(COLLECTORS, shard=Shard(1, 2), journal=str(tmp_path / "j1")), lake=lake).writer.close()
    finally:
        ingestor.writer.close()


def test_the_example_configs_load_and_the_sharded_one_covers_every_pair_once() -> None:
    root = Path(__file__).resolve().parents[2] / "config"
    for path in sorted(root.glob("*.yaml")):
        assert load_config(path).assigned(), path
    example = root / "ingest.shards.example.yaml"
    config = load_config(example)
    assert config.shard is not None and config.shard.replicas == 1
    pairs = [(c.exchange, s) for c in config.collectors for s in c.symbols]
    for count in (config.shard.count, 3):  # its own, and the three hosts of docs/scaling.md's example
        collected = [
            (c.exchange, s)
            for i in range(count)
            for c in load_config(example, shard=f"{i}/{count}").assigned()
            for s in c.symbols
        ]
        assert sorted(collected) == sorted(pairs), count


def test_the_all_exchanges_example_is_a_valid_config_for_the_ten() -> None:
    """config/ingest.all.example.yaml: every entry validates (exchange, symbols, channels) and, with the
    connections each exchange's limit asks for, the ten exchanges are all there, spot and perpetuals."""
    from mdplatform.collector import load_config
    from mdplatform.exchanges import get_exchange

    config = load_config(Path(__file__).resolve().parents[2] / "config" / "ingest.all.example.yaml")
    for collector in config.collectors:
        collector.validate()
    ids = [c.exchange for c in config.collectors]
    assert {x.split("-")[0] for x in ids} == {
        "binance", "okx", "bybit", "coinbase", "kraken", "kucoin", "gateio", "htx", "bitfinex", "mexc"
    }  # fmt: skip
    markets = {m for x in set(ids) for m in get_exchange(x).capabilities.markets}
    assert {"spot", "linear-perpetual", "swap"} <= markets
