"""``docs/configuration.md``, generated from the configuration model: each field of ``IngestConfig``,
``ExchangeCollectorConfig`` and ``Shard`` with its type, default and the ``#:`` comment above it in
``_config.py`` (the one place a field is described). A field without a comment is an error here, so the
reference cannot fall behind the model.

    python -m mdplatform.collector._config_doc > docs/configuration.md
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys

from . import _config

__all__ = ["configuration_reference"]

_SECTIONS = (
    ("Top level", _config.IngestConfig, ""),
    ("`collectors[]`: one entry per exchange", _config.ExchangeCollectorConfig, ""),
    (
        "`shard`",
        _config.Shard,
        "Written `I/N` or `I/N/R` (`--shard I/N` and `$MDP_SHARD` override index and count); docs/scaling.md.",
    ),
)


def _comments(cls: type) -> dict[str, str]:
    """Field -> the ``#:`` comment lines right above it in the class body."""
    source = inspect.getsource(_config)
    lines = source.splitlines()
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    found: dict[str, str] = {}
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            above: list[str] = []
            i = item.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#:"):
                above.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            found[item.target.id] = " ".join(above)
    return found


def _default(field: dataclasses.Field[object]) -> str:
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
        return "required"
    value = field.default
    return "unset" if value is None else f"`{value}`"


def configuration_reference() -> str:
    out = [
        "# Configuration reference",
        "",
        "`mdp ingest --config FILE`: a YAML mapping (examples in `config/`). Generated from the configuration model",
        "(`python -m mdplatform.collector._config_doc > docs/configuration.md`); an unknown field is refused with a",
        "message naming it. Settings of the pipeline side are environment variables: docs/operations.md, Settings.",
    ]
    for title, cls, note in _SECTIONS:
        comments = _comments(cls)
        out += ["", f"## {title}", ""] + ([note, ""] if note else [])
        out += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for field in dataclasses.fields(cls):
            meaning = comments.get(field.name, "")
            if not meaning:
                raise ValueError(f"{cls.__name__}.{field.name} has no #: comment in _config.py")
            kind = str(field.type).replace("|", "or")
            out.append(f"| `{field.name}` | {kind} | {_default(field)} | {meaning.replace('|', 'or')} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(configuration_reference())
