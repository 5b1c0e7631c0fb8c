"""MEXC spot v3 WebSocket pushes: the published protobuf definitions, and frames turned into the JSON the lake keeps.

The definitions are MEXC's own (https://github.com/mexcdevelop/websocket-proto, the files the spot v3 docs link
to): ``PushDataV3ApiWrapper.proto`` (``channel`` 1, ``symbol`` 3, ``symbolId`` 4, ``createTime`` 5, ``sendTime`` 6,
proto3 ``optional``; the body a ``oneof``), ``PublicAggreDealsV3Api.proto`` (body 314), ``PublicAggreDepthsV3Api.proto``
(body 313), ``PublicAggreBookTickerV3Api.proto`` (body 315) and ``PublicSpotKlineV3Api.proto`` (body 308). They are
declared here field for field with the maintained ``protobuf`` runtime (``descriptor_pb2``: no ``protoc`` step, no
generated code to keep in sync) rather than parsed from the ``.proto`` text.

Two departures, both so that nothing the exchange sends is lost or misread:
- ``PublicAggreDealsV3ApiItem`` field 6: the current upstream file declares two fields on that number (``bool isRpi
  = 6`` and ``int64 version = 6``), which ``protoc`` refuses. It is not declared; it is kept as an unknown field.
- ``PublicAggreDepthsV3Api`` field 6 ``int64 lastOrderCreateTime``: in the current docs' example (Diff.Depth Stream,
  2026) but not yet in every copy of the ``.proto``; declared.
Every field the frame carries that these definitions do not name (other bodies, fields added later) is kept under
``"_unknown"`` of its message: ``[{"field": n, "wireType": w, "value": v}]`` (varints and fixed as integers,
length-delimited as base64), so a frame turned into JSON keeps every byte's meaning.

The JSON is protobuf's canonical JSON mapping (``json_format``: int64 as decimal strings, proto3 defaults omitted,
as they are on the wire) with the ``.proto`` field names, fields in field-number order: ``channel`` always comes
first, so a frame routes by string operations. ``encode`` is the inverse (the replay and the tests' capture
builder): JSON -> the same protobuf bytes.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

# no stubs in the environment (``types-protobuf`` is not a dev dependency): the module is typed at its own boundary
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from google.protobuf.unknown_fields import UnknownFieldSet  # type: ignore[import-untyped]

__all__ = ["BODY_DEALS", "BODY_DEPTHS", "BODY_KLINE", "BODY_TICKER", "Wrapper", "decode", "encode", "parse", "to_json"]

#: the wrapper's ``oneof body`` members this module reads
BODY_DEPTHS = "publicAggreDepths"
BODY_DEALS = "publicAggreDeals"
BODY_TICKER = "publicAggreBookTicker"
BODY_KLINE = "publicSpotKline"

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _INT32, _INT64, _MESSAGE = _F.TYPE_STRING, _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_MESSAGE
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

#: message -> (name, number, type, repeated, message type) as in MEXC's .proto files
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "PublicAggreDealsV3ApiItem": [
        ("price", 1, _STRING, False, ""),
        ("quantity", 2, _STRING, False, ""),
        ("tradeType", 3, _INT32, False, ""),
        ("time", 4, _INT64, False, ""),
        ("tradeId", 5, _STRING, False, ""),
    ],
    "PublicAggreDealsV3Api": [
        ("deals", 1, _MESSAGE, True, "PublicAggreDealsV3ApiItem"),
        ("eventType", 2, _STRING, False, ""),
    ],
    "PublicAggreDepthV3ApiItem": [
        ("price", 1, _STRING, False, ""),
        ("quantity", 2, _STRING, False, ""),
    ],
    "PublicAggreDepthsV3Api": [
        ("asks", 1, _MESSAGE, True, "PublicAggreDepthV3ApiItem"),
        ("bids", 2, _MESSAGE, True, "PublicAggreDepthV3ApiItem"),
        ("eventType", 3, _STRING, False, ""),
        ("fromVersion", 4, _STRING, False, ""),
        ("toVersion", 5, _STRING, False, ""),
        ("lastOrderCreateTime", 6, _INT64, False, ""),
    ],
    "PublicSpotKlineV3Api": [
        ("interval", 1, _STRING, False, ""),
        ("windowStart", 2, _INT64, False, ""),
        ("openingPrice", 3, _STRING, False, ""),
        ("closingPrice", 4, _STRING, False, ""),
        ("highestPrice", 5, _STRING, False, ""),
        ("lowestPrice", 6, _STRING, False, ""),
        ("volume", 7, _STRING, False, ""),
        ("amount", 8, _STRING, False, ""),
        ("windowEnd", 9, _INT64, False, ""),
    ],
    "PublicAggreBookTickerV3Api": [
        ("bidPrice", 1, _STRING, False, ""),
        ("bidQuantity", 2, _STRING, False, ""),
        ("askPrice", 3, _STRING, False, ""),
        ("askQuantity", 4, _STRING, False, ""),
    ],
}
#: the wrapper: ``channel`` (1), the proto3 ``optional`` header fields, the body members
_WRAPPER_OPTIONAL = [
    ("symbol", 3, _STRING),
    ("symbolId", 4, _STRING),
    ("createTime", 5, _INT64),
    ("sendTime", 6, _INT64),
]
_WRAPPER_BODY = [
    (BODY_KLINE, 308, "PublicSpotKlineV3Api"),
    (BODY_DEPTHS, 313, "PublicAggreDepthsV3Api"),
    (BODY_DEALS, 314, "PublicAggreDealsV3Api"),
    (BODY_TICKER, 315, "PublicAggreBookTickerV3Api"),
]
_PACKAGE = "mdplatform.mexc"


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(name="mdplatform_mexc_push.proto", package=_PACKAGE, syntax="proto3")
    for name, fields in _MESSAGES.items():
        m = f.message_type.add(name=name)
        for fname, number, ftype, repeated, type_name in fields:
            field = m.field.add(name=fname, number=number, type=ftype, json_name=fname)
            field.label = _REPEATED if repeated else _OPTIONAL
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    w = f.message_type.add(name="PushDataV3ApiWrapper")
    w.field.add(name="channel", number=1, type=_STRING, label=_OPTIONAL, json_name="channel")
    w.oneof_decl.add(name="body")
    for fname, number, type_name in _WRAPPER_BODY:
        w.field.add(
            name=fname,
            number=number,
            type=_MESSAGE,
            label=_OPTIONAL,
            type_name=f".{_PACKAGE}.{type_name}",
            json_name=fname,
            oneof_index=0,
        )
    # proto3 ``optional``: each field in its own synthetic oneof, declared after the real ones
    for fname, number, ftype in _WRAPPER_OPTIONAL:
        w.oneof_decl.add(name=f"_{fname}")
        w.field.add(
            name=fname,
            number=number,
            type=ftype,
            label=_OPTIONAL,
            json_name=fname,
            proto3_optional=True,
            oneof_index=len(w.oneof_decl) - 1,
        )
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
#: ``PushDataV3ApiWrapper`` (a protobuf message class)
Wrapper: type[Message] = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.PushDataV3ApiWrapper")
)


def parse(data: bytes) -> Message:
    """One binary frame as a ``PushDataV3ApiWrapper``; ValueError when it is not one."""
    msg = Wrapper()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"not a PushDataV3ApiWrapper frame: {exc}") from exc
    return msg


def to_json(msg: Message) -> str:
    """The canonical JSON of a wrapper, every unknown field kept under ``"_unknown"`` (see the module docstring)."""
    obj = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    _add_unknown(msg, obj)
    return orjson.dumps(obj).decode()


def decode(data: bytes) -> str:
    """``to_json(parse(data))``: a frame as the text the lake keeps; ValueError when it is not a push."""
    msg = parse(data)
    if not msg.channel:
        raise ValueError("protobuf frame without a channel")
    return to_json(msg)


def encode(text: str | dict[str, Any]) -> bytes:
    """The protobuf bytes of a push given as the JSON ``decode`` makes (``"_unknown"`` entries written back)."""
    obj = orjson.loads(text) if isinstance(text, str) else text
    msg = Wrapper()
    json_format.ParseDict(_without_unknown(obj), msg)
    data: bytes = msg.SerializeToString(deterministic=True)
    extra = _unknown_bytes(obj)
    return data + extra if extra else data


def _add_unknown(msg: Message, obj: dict[str, Any]) -> None:
    fields = UnknownFieldSet(msg)
    if len(fields):
        obj["_unknown"] = [_unknown_entry(f) for f in fields]
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        key = fd.name
        if fd.label == fd.LABEL_REPEATED:
            for sub, sub_obj in zip(value, obj.get(key, ()), strict=False):
                _add_unknown(sub, sub_obj)
        elif isinstance(obj.get(key), dict):
            _add_unknown(value, obj[key])


def _unknown_entry(f: Any) -> dict[str, Any]:
    value = f.data
    if isinstance(value, bytes):
        value = base64.b64encode(value).decode()
    elif isinstance(value, UnknownFieldSet):  # a group: not used by proto3; kept as its field numbers
        value = [g.field_number for g in value]
    return {"field": f.field_number, "wireType": f.wire_type, "value": value}


def _without_unknown(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_unknown(v) for k, v in obj.items() if k != "_unknown"}
    if isinstance(obj, list):
        return [_without_unknown(v) for v in obj]
    return obj


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _unknown_bytes(obj: dict[str, Any]) -> bytes:
    """The top-level ``"_unknown"`` entries as wire bytes (nested ones are a replay nicety not needed here: the
    replay re-serializes the parsed message, which keeps every unknown field itself)."""
    out = bytearray()
    for entry in obj.get("_unknown", ()):
        number, wire, value = int(entry["field"]), int(entry["wireType"]), entry["value"]
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(int(value))
        elif wire == 1:
            out += int(value).to_bytes(8, "little", signed=int(value) < 0)
        elif wire == 5:
            out += int(value).to_bytes(4, "little", signed=int(value) < 0)
        elif wire == 2:
            raw = base64.b64decode(value)
            out += _varint(len(raw)) + raw
    return bytes(out)
