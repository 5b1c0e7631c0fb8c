"""The capability table (`mdp exchanges`, the README's copy): every claim in it names the test that backs it, on real
messages (../shared/data, tests/data) or on messages built from the exchange's documentation (each test says which).
A new ✅ without an entry here fails; an entry naming a test that does not exist fails."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import polars as pl
from test_htx import COINM, _hf

from mdplatform.book import book_samples
from mdplatform.capture import import_capture
from mdplatform.contract import GAP, SYNCED, Subscription
from mdplatform.exchanges import capability_markdown, capability_rows, claimed
from mdplatform.lake import read_raw

REPO = Path(__file__).resolve().parents[2]
ME = "tests/exchanges/test_capability_table.py"

_BINANCE = {
    "trades": "tests/exchanges/test_trades_exact.py::test_every_recorded_trade_is_exact",
    "book": "tests/exchanges/test_binance_book_sync.py::test_rebuilt_book_equals_every_book_ticker",
    "ticker": "tests/exchanges/test_binance_book_sync.py::test_rebuilt_book_equals_every_book_ticker",
    "sequence": "tests/exchanges/test_binance_book_sync.py::test_removed_diff_is_a_gap_and_asks_for_a_snapshot",
    "backfill": "tests/e2e/test_backfill_heals.py::test_backfill_makes_the_cut_minutes_whole",
    "contiguous_ids": "tests/transforms/test_coverage.py::test_reconnect_gap_is_not_connected_unless_consecutive_ids_prove_it",  # noqa: E501
}
_BYBIT = {
    "trades": "tests/exchanges/test_bybit.py::test_trades_exact_side_time_and_ids",
    "book": "tests/exchanges/test_bybit.py::test_real_book_rebuilds_without_sequence_error",
    "ticker": "tests/e2e/test_bybit_live.py::test_bybit_live_collection_equals_import",
    "sequence": "tests/exchanges/test_bybit.py::test_gap_resubscribes_that_topic_only",
    "backfill": "tests/exchanges/test_bybit.py::test_history_says_it_does_not_reach_back",
}
_HTX_SWAPS = {
    "trades": "tests/exchanges/test_htx.py::test_recordings_decode_and_every_trade_lands",
    "ticker": "tests/exchanges/test_htx.py::test_routes_acks_and_errors",
    "backfill": "tests/exchanges/test_htx.py::test_coin_margined_history_through_the_replay_of_the_real_recording",
}

#: registry id -> column -> the test behind its claim (every market of the id shares them)
EVIDENCE: dict[str, dict[str, str]] = {
    "binance": _BINANCE,
    "binance-usdm": _BINANCE | {"trades": "tests/e2e/test_futures_import.py::test_usdm_and_coinm_trades_and_candles"},
    "binance-coinm": _BINANCE | {"trades": "tests/e2e/test_futures_import.py::test_usdm_and_coinm_trades_and_candles"},
    "okx": {
        "trades": "tests/exchanges/test_okx.py::test_trades_with_count_swaps_and_taker_side",
        "book": "tests/book/test_real_recordings.py::test_okx_books_checksums_verify_in_the_rebuild",
        "ticker": "tests/collector/test_ingest_over_replay.py::test_okx_subscribes_keeps_books_verified_and_lands_acks",
        "checksum": "tests/exchanges/test_okx.py::test_checksum_verifies_on_every_books_message",
        "sequence": "tests/exchanges/test_okx.py::test_sequence_rules_of_the_documented_example",
        "backfill": "tests/e2e/test_backfill_heals.py::test_okx_capture_healed_from_history_trades",
    },
    "bybit": _BYBIT,
    "bybit-linear": _BYBIT,
    "coinbase": {
        "trades": "tests/exchanges/test_coinbase.py::test_side_is_the_taker_side_and_numbers_are_exact",
        "book": "tests/exchanges/test_coinbase.py::test_offline_book_builder_equals_the_documented_rules",
        "ticker": "tests/e2e/test_coinbase_live.py::test_coinbase_live_collection_equals_import",
        "sequence": "tests/exchanges/test_coinbase.py::test_session_gap_marks_every_book_and_resubscribes_level2",
        "backfill": "tests/exchanges/test_coinbase.py::test_a_cut_is_healed_from_the_replays_rest",
        "contiguous_ids": "tests/exchanges/test_coinbase.py::test_history_over_the_replay_proves_the_span_by_ids",
    },
    "kraken": {
        "trades": "tests/exchanges/test_kraken.py::test_trades_are_the_recorded_ones",
        "book": "tests/exchanges/test_kraken.py::test_offline_builder_follows_the_same_rules",
        "ticker": "tests/e2e/test_kraken_live.py::test_kraken_live_collection_equals_import",
        "checksum": "tests/exchanges/test_kraken.py::test_real_v1_book_1000_checksums_all_verify",
        "backfill": "tests/exchanges/test_kraken.py::test_history_over_the_replay_returns_every_trade_of_the_span",
        "contiguous_ids": "tests/exchanges/test_kraken.py::test_replay_speaks_v2_and_a_resubscribe_repeats_trades_kept_once",  # noqa: E501
    },
    "kucoin": {
        "trades": "tests/exchanges/test_kucoin.py::test_recording_trades_normalize_exactly",
        "book": "tests/exchanges/test_kucoin.py::test_recording_snapshot_and_3805_diffs_apply_without_a_gap_and_tickers_equal_the_book",  # noqa: E501
        "ticker": "tests/exchanges/test_kucoin.py::test_recording_snapshot_and_3805_diffs_apply_without_a_gap_and_tickers_equal_the_book",  # noqa: E501
        "sequence": "tests/exchanges/test_kucoin.py::test_session_gap_resyncs_that_symbol_only",
        "backfill": "tests/exchanges/test_kucoin.py::test_rest_history_heals_within_the_last_100_trades_and_says_when_it_cannot",  # noqa: E501
    },
    "gateio": {
        "trades": "tests/exchanges/test_gateio.py::test_spot_trades_exact",
        "book": "tests/exchanges/test_gateio.py::test_spot_books_apply_with_no_gap",
        "ticker": "tests/e2e/test_gateio_live.py::test_gateio_live_collection_equals_import",
        "sequence": "tests/exchanges/test_gateio.py::test_session_gap_resyncs_that_pair_only",
        "backfill": "tests/exchanges/test_gateio.py::test_history_heals_through_the_replay_rest",
    },
    "gateio-futures": {
        "trades": "tests/exchanges/test_gateio.py::test_futures_trades_from_the_docs",
        "book": "tests/exchanges/test_gateio.py::test_futures_books_apply_with_no_gap_and_match_book_ticker",
        "ticker": "tests/exchanges/test_gateio.py::test_futures_books_apply_with_no_gap_and_match_book_ticker",
        "sequence": "tests/e2e/test_gateio_live.py::test_gateio_futures_books_sync_over_the_replay",
        "backfill": "tests/exchanges/test_gateio.py::test_futures_history_says_when_it_proves_nothing",
    },
    "htx": {
        "trades": "tests/exchanges/test_htx.py::test_recordings_decode_and_every_trade_lands",
        "book": "tests/exchanges/test_htx.py::test_mbp_builder_offline_and_checkpoint",
        "ticker": "tests/exchanges/test_htx.py::test_routes_acks_and_errors",
        "sequence": "tests/exchanges/test_htx.py::test_mbp_session_refresh_splice_gap_and_resync_of_that_symbol_only",
        "backfill": "tests/exchanges/test_htx.py::test_rest_history_heals_a_recent_gap_and_says_when_it_cannot_reach_back",  # noqa: E501
        "contiguous_ids": "tests/exchanges/test_htx.py::test_spot_trade_ids_run_without_a_hole_per_symbol",
    },
    "htx-swap": _HTX_SWAPS
    | {
        "book": "tests/e2e/test_htx_live.py::test_htx_swap_live_high_freq_gap_resubscribes_that_contract",
        "sequence": "tests/exchanges/test_htx.py::test_high_freq_session_version_chain_and_resubscribe",
    },
    "htx-coinm": _HTX_SWAPS
    | {
        "book": f"{ME}::test_htx_coinm_books_from_the_real_recording_and_its_version_chain",
        "sequence": f"{ME}::test_htx_coinm_books_from_the_real_recording_and_its_version_chain",
    },
    "bitfinex": {
        "trades": "tests/exchanges/test_bitfinex.py::test_te_and_tu_land_both_and_normalize_once",
        "book": "tests/exchanges/test_bitfinex.py::test_books_rebuild_like_an_independent_reading",
        "ticker": "tests/e2e/test_bitfinex_live.py::test_bitfinex_live_collection_equals_import",
        "checksum": "tests/exchanges/test_bitfinex.py::test_built_checksums_verify_and_a_wrong_one_resyncs_that_symbol_only",  # noqa: E501
        "sequence": "tests/exchanges/test_bitfinex.py::test_real_recording_sequence_runs_without_a_break",
        "backfill": "tests/exchanges/test_bitfinex.py::test_history_pages_through_the_replay_and_proves_by_time",
    },
    "mexc": {
        "trades": "tests/exchanges/test_mexc.py::test_trades_exact_side_time_and_ids",
        "book": "tests/exchanges/test_mexc.py::test_builder_applies_the_documented_rules_and_restores",
        "ticker": "tests/e2e/test_mexc_live.py::test_mexc_live_collection_equals_import",
        "sequence": "tests/exchanges/test_mexc.py::test_session_buffers_fetches_syncs_and_resyncs_that_symbol_only",
        "backfill": "tests/exchanges/test_mexc.py::test_history_fetches_the_span_but_proves_nothing",
    },
}


@cache
def _tests_in(path: str) -> frozenset[str]:
    tree = ast.parse((REPO / path).read_text())
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def test_every_claim_names_a_test_that_exists() -> None:
    missing, unknown = [], []
    for row in capability_rows():
        for column in claimed(row):
            ref = EVIDENCE.get(row.exchange, {}).get(column)
            if ref is None:
                missing.append(f"{row.exchange} {row.market} {column}")
                continue
            path, _, name = ref.partition("::")
            if not (REPO / path).is_file() or name not in _tests_in(path):
                unknown.append(ref)
    assert not missing, f"claims without a test: {missing}"
    assert not unknown, f"evidence naming no test: {unknown}"
    # and no evidence for a claim the table does not make (a capability withdrawn must take its entry with it)
    made = {(r.exchange, c) for r in capability_rows() for c in claimed(r)}
    stale = sorted((x, c) for x, cols in EVIDENCE.items() for c in cols if (x, c) not in made)
    assert not stale, stale


def test_the_table_covers_the_ten_exchanges() -> None:
    names = {r.exchange.split("-")[0] for r in capability_rows()}
    assert names == {"binance", "okx", "bybit", "coinbase", "kraken", "kucoin", "gateio", "htx", "bitfinex", "mexc"}
    # spot everywhere, and the perpetuals of those that offer them here
    markets = {(r.exchange, r.market) for r in capability_rows()}
    assert {(x, "spot") for x in names} <= markets
    assert {("binance-usdm", "linear-perpetual"), ("bybit-linear", "linear-perpetual"), ("okx", "swap")} <= markets


def test_the_readme_table_is_the_registrys() -> None:
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- capability-table:start -->\n(.*?)<!-- capability-table:end -->", readme, re.S)
    assert found is not None
    assert found.group(1) == capability_markdown(), "README capability table: paste `mdp exchanges --markdown`"


def test_htx_coinm_books_from_the_real_recording_and_its_version_chain(shared_data: Path, tmp_path: Path) -> None:
    """Coin-M swaps (real recording, HUOBI_SWAP.ws.1.0, 2022): its ``depth.step0`` whole books rebuild from the lake,
    each symbol's last sample equal to its last push; and its incremental ``high_freq`` book (messages built from
    "[General] Subscribe Incremental Market Depth Data") breaks on a version jump and resubscribes that contract."""
    import_capture([shared_data / "cryptofeed-samples/HUOBI_SWAP.ws.1.0.gz"], "htx-coinm", str(tmp_path))
    raw = read_raw(str(tmp_path), 0, 1 << 62, exchanges=["htx-coinm"])
    books = raw.filter(pl.col("channel") == "depth.step0")
    assert books.height == 1274
    for symbol in books["symbol"].unique().sort().to_list():
        out = book_samples(raw, COINM, symbol, clock="receive")
        assert out.samples.height > 0 and out.invalid.height == 0, symbol
        last = books.filter(pl.col("symbol") == symbol)["payload"][-1]
        bid = re.search(r'"bids":\[\[([0-9.Ee+-]+),', last)
        assert bid is not None and out.samples["bid_price"][-1] == float(bid.group(1)), symbol

    ch = "depth.size_150.high_freq"
    session = COINM.new_session([Subscription(ch, "BTC-USDT")], None)
    synced = session.on_frame(ch, "BTC-USDT", _hf("snapshot", 10, "[[13071.9,38]]", "[[13081.9,206]]"))
    assert synced is not None and [e.kind for e in synced.events] == [SYNCED]
    gap = session.on_frame(ch, "BTC-USDT", _hf("update", 12))
    assert gap is not None and [e.kind for e in gap.events] == [GAP]
    assert gap.send[0].startswith('{"unsub":"market.BTC-USDT.depth.size_150.high_freq"')
