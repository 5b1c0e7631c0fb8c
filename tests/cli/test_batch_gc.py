"""Batch commands hold the cyclic garbage collector back while they import and run, and give the thresholds back."""

from __future__ import annotations

import gc

import pytest

from mdplatform._gc import BATCH_THRESHOLDS, fewer_collections


def test_thresholds_raised_inside_and_restored_after_even_on_error() -> None:
    before = gc.get_threshold()
    assert before != BATCH_THRESHOLDS
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == BATCH_THRESHOLDS
        with fewer_collections():
            assert gc.get_threshold() == BATCH_THRESHOLDS
        assert gc.get_threshold() == BATCH_THRESHOLDS  # the inner use gave back the outer one's
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before
