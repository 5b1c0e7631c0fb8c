"""Recorded exchange traffic: read captures (hftbacktest, cryptofeed), detect their exchange, import them."""

from ._detect import check_exchange, detect_exchange
from ._import import ImportStats, capture_id, import_capture
from ._read import (
    BadLine,
    CapturedFrame,
    CaptureError,
    CaptureFormat,
    DamagedCapture,
    ReadStats,
    capture_format,
    merge_captures,
    open_capture,
    read_capture,
)

__all__ = [
    "BadLine",
    "CaptureError",
    "CaptureFormat",
    "CapturedFrame",
    "DamagedCapture",
    "ImportStats",
    "ReadStats",
    "capture_format",
    "capture_id",
    "check_exchange",
    "detect_exchange",
    "import_capture",
    "merge_captures",
    "open_capture",
    "read_capture",
]
