"""The PostgreSQL / TimescaleDB sink: migrations, window loads by binary COPY, and what a database holds.

    from mdplatform.pg import migrate, replace_window, replace_windows, info
    migrate()                                             # $MDP_PG_DSN, or migrate("postgresql://...")
    replace_window("trades", df, "ts", hour_ns, hour_ns + 3_600 * 10**9)
    replace_windows([Window("trades", ...), Window("coverage", ...)])   # one transaction
    reload_from_lake("lake", start_ns, end_ns)            # PostgreSQL brought back to the lake's partitions
    plan_retention(); enforce_retention()                 # what retention would delete; delete it (opt-in)

The DSN comes from the ``dsn`` argument or ``$MDP_PG_DSN``; loads share a connection pool per DSN. Loads of the
same (table, hour) run one at a time across processes (advisory locks) and every wait is bounded (``Timeouts``:
``MDP_PG_LOCK_TIMEOUT_S``, ``MDP_PG_STATEMENT_TIMEOUT_S``). No message,
exception or returned value holds the DSN's password (``redact_dsn``). See docs/postgres.md.
"""

from mdplatform.warehouse import Window

from ._dsn import ENV_VAR, PgConfigError, PgError, redact_dsn, resolve_dsn
from ._info import DatabaseInfo, TableInfo, info
from ._load import LoadResult, Timeouts, cancel_loads, lock_keys, replace_window, replace_windows
from ._migrate import Migration, MigrationError, default_migrations_dir, migrate
from ._pool import close_pools
from ._reload import ReloadResult, reload_from_lake
from ._retention import Retention, enforce_retention, plan_retention, set_retention
from ._status import StatusWriter, status_rows

__all__ = [
    "ENV_VAR",
    "DatabaseInfo",
    "LoadResult",
    "Migration",
    "MigrationError",
    "PgConfigError",
    "PgError",
    "ReloadResult",
    "Retention",
    "StatusWriter",
    "TableInfo",
    "Timeouts",
    "Window",
    "cancel_loads",
    "close_pools",
    "default_migrations_dir",
    "enforce_retention",
    "info",
    "lock_keys",
    "migrate",
    "plan_retention",
    "redact_dsn",
    "reload_from_lake",
    "replace_window",
    "replace_windows",
    "resolve_dsn",
    "set_retention",
    "status_rows",
]
