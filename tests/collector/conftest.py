"""The collector's two receive paths: tests that take ``receive`` run on each (the compiled one only where it is
built: ``setup.py`` builds it when Cython is there)."""

from __future__ import annotations

import pytest

from mdplatform.collector import _connection


@pytest.fixture(params=["compiled", "python"])
def receive(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(_connection, "_BATCHER", None)
    elif not _connection.compiled_receive():
        pytest.skip("the compiled receive path is not built (no Cython when the package was installed)")
    return str(request.param)
