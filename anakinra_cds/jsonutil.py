"""JSON that keeps Decimals exact: written as JSON numbers, read back as Decimals. No floats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson
from django.core.serializers.json import DjangoJSONEncoder


class _Constant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _Constant(f"{name} is not a valid JSON number")


class DecimalJSONEncoder(json.JSONEncoder):
    """Usable wherever Django takes an encoder class (JSONField, JsonResponse)."""

    def encode(self, o: Any) -> str:
        return dumps(o)

    def iterencode(self, o: Any, _one_shot: bool = False):
        yield dumps(o)


class DecimalJSONDecoder(json.JSONDecoder):
    """Numbers as Decimal; NaN, Infinity and absurd nesting are decode errors like any other
    malformed JSON (so forms and views report them instead of failing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parse_float"] = Decimal
        kwargs["parse_constant"] = _reject_constant
        super().__init__(*args, **kwargs)

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().decode(s, *args, **kwargs)
        except _Constant as error:
            raise json.JSONDecodeError(str(error), s, 0) from None
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", s, 0) from None


def dumps(value: Any, *, indent: int | None = None) -> str:
    return simplejson.dumps(
        value,
        use_decimal=True,
        default=DjangoJSONEncoder().default,
        ensure_ascii=False,
        indent=indent,
        separators=(",", ":") if indent is None else None,
        allow_nan=False,
    )


def raw(text: str) -> simplejson.RawJSON:
    """Already-encoded JSON, embedded verbatim by `dumps` (encode a large value once, use it twice)."""
    return simplejson.RawJSON(text)


def loads(text: str | bytes) -> Any:
    """Parse JSON with numbers as Decimal/int; NaN and Infinity are refused."""
    return json.loads(text, cls=DecimalJSONDecoder)
