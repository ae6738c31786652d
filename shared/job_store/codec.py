"""DynamoDB attribute values to and from plain JSON types (no Decimal round trips)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def encode_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, Mapping):
        return {"M": {k: encode_value(v) for k, v in value.items() if v is not None}}
    if isinstance(value, list | tuple):
        return {"L": [encode_value(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"can't store {type(value).__name__} in DynamoDB")


def decode_value(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "N":
        return float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "M":
        return {k: decode_value(v) for k, v in value.items()}
    if kind == "L":
        return [decode_value(v) for v in value]
    if kind == "NULL":
        return None
    return value  # S, BOOL


def encode_item(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in data.items() if v is not None}


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: decode_value(v) for k, v in item.items()}
