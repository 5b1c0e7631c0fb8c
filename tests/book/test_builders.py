"""Every registered exchange rebuilds its books through the same ``Rebuild``: the caller hands it the exchange,
whose own ``BookBuilder`` it drives; nothing exchange-specific in the core, and no import cycle between them."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from mdplatform.book import Rebuild
from mdplatform.exchanges import EXCHANGES, OkxBookBuilder, get_exchange, okx_checksum


@pytest.mark.parametrize("xid", sorted(EXCHANGES))
def test_every_exchange_has_a_book_builder_reading_its_book_channels(xid: str) -> None:
    rebuild = Rebuild(get_exchange(xid), "X")
    assert not rebuild.valid
    book_channels = EXCHANGES[xid].capabilities.book_channels
    # the builder reads the exchange's full-depth book channel (plus Binance's landed REST snapshots)
    assert rebuild.channels & book_channels
    c = rebuild.checkpoint(5)
    assert (c.exchange, c.symbol, c.recv_ns, c.valid) == (xid, "X", 5, False)


def test_the_book_code_and_the_contract_import_no_exchange() -> None:
    """The book package is handed its builder: importing it (or the contract) loads no exchange module."""
    code = (
        "import sys, mdplatform.book, mdplatform.contract; "
        "print(sorted(m for m in sys.modules if m.startswith(('mdplatform.exchanges', 'mdplatform.capture'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def push(action: str, item: dict[str, object]) -> str:
    return orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [item]}).decode()


def test_okx_builder_restores_and_verifies_the_next_checksum() -> None:
    b = OkxBookBuilder("BTC-USDT")
    snapshot = {"bids": [["100.0", "1.50", "0", "1"]], "asks": [["101.0", "2", "0", "1"]], "ts": "1", "seqId": 7}
    assert b.on_raw("books", push("snapshot", snapshot)) is not None and b.valid and b.seq == 7
    restored = OkxBookBuilder("BTC-USDT")
    restored.restore(b.book.raw_bids(), b.book.raw_asks(), b.checkpoint())
    assert restored.valid and restored.seq == 7 and restored.book.raw_bids() == [("100.0", "1.50")]
    # an update whose checksum is computed over the restored strings verifies; a wrong one drops the book
    good = okx_checksum([("100.0", "1.50")], [("101.0", "3")])
    update = {"bids": [], "asks": [["101.0", "3", "0", "1"]], "ts": "2", "seqId": 8, "prevSeqId": 7, "checksum": good}
    assert restored.on_raw("books", push("update", update)) is None and restored.checksums_verified == 1
    wrong = {**update, "seqId": 9, "prevSeqId": 8, "checksum": good + 1}
    event = restored.on_raw("books", push("update", wrong))
    assert event is not None and event.kind == "checksum" and not restored.valid
