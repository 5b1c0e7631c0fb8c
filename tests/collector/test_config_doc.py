"""docs/configuration.md is what the configuration model says (generated from ``_config.py``'s ``#:`` comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdplatform.collector import _config
from mdplatform.collector._config_doc import configuration_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_doc_is_what_the_generator_prints() -> None:
    assert DOC.read_text() == configuration_reference(), (
        "regenerate: python -m mdplatform.collector._config_doc > docs/configuration.md"
    )


def test_every_field_is_in_the_doc_with_its_default() -> None:
    text = DOC.read_text()
    for cls in (_config.IngestConfig, _config.ExchangeCollectorConfig, _config.Shard):
        for field in cls.__dataclass_fields__.values():
            assert f"| `{field.name}` |" in text, field.name
    assert "| `journal_budget_mb` | float | `2048.0` |" in text
    assert "| `exchange` | str | required |" in text


def test_a_field_without_a_comment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from mdplatform.collector import _config_doc

    monkeypatch.setattr(_config_doc, "_comments", lambda cls: {})
    with pytest.raises(ValueError, match="has no #: comment"):
        configuration_reference()


def test_every_top_level_field_of_the_model_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "collectors: [{exchange: binance, symbols: [BTCUSDT], channels: [trade]}]\n"
        "lake: /tmp/x\nstatus_file: s.json\njournal: j\njournal_budget_mb: 10\nshard: 0/1\nwriter: w\n"
        "status_http: 'off'\n"
    )
    loaded = _config.load_config(config)
    assert loaded.writer == "w" and loaded.journal_budget_mb == 10.0 and loaded.status_http == "off"
    config.write_text(config.read_text() + "nope: 1\n")
    with pytest.raises(_config.ConfigError, match=r"unknown top-level field\(s\) \['nope'\]"):
        _config.load_config(config)
