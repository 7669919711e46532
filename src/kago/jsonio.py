"""JSON without the ``json`` package's import cost.

``import json`` costs ~9 ms on this kind of host, nearly all of it ``re`` pulled in by
``json.decoder``; kago-oci's whole start-up budget is ~20 ms. The C scanner and encoder in
``_json`` (the ones ``json`` itself uses) need no ``re``: this module drives them directly.
Output matches ``json.dumps`` (compact, or indented like Go's MarshalIndent for ``state``).
"""

import _json

from kago.errors import SpecError


class _Context:
    """The attributes _json.make_scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"{name} is not valid JSON")


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


def loads(text, what="config.json"):
    """Parse a JSON document; a malformed one is a SpecError naming line and column."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecError("", f"{what}: not UTF-8 (byte {e.start})") from None
    idx = _skip(text, 0)
    try:
        obj, end = _scan(text, idx)
    except StopIteration as e:
        raise _syntax(what, text, e.value) from None
    except ValueError as e:  # JSONDecodeError and bad constants
        why = getattr(e, "msg", None) or str(e)
        raise _syntax(what, text, getattr(e, "pos", idx), why.removesuffix(" at")) from None
    except SystemError:
        # _json's error path only looks json.decoder up in sys.modules (to build a
        # JSONDecodeError) and fails without it: load it now, on the error path only, and
        # scan again for the real message
        import json.decoder  # noqa: F401
        return loads(text, what)
    except RecursionError:
        raise SpecError("", f"{what}: nested too deeply") from None
    end = _skip(text, end)
    if end != len(text):
        raise _syntax(what, text, end, "extra data after the document")
    return obj


def _skip(text, idx):
    while idx < len(text) and text[idx] in _WS:
        idx += 1
    return idx


def _syntax(what, text, pos, why="invalid JSON"):
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return SpecError("", f"{what}: {why.lower()} at line {line} column {col}")


_encode_str = _json.encode_basestring


def _default(obj):
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_compact = _json.make_encoder(None, _default, _encode_str, None, ":", ",", False, False, True)


def dumps(obj, indent=None):
    if indent is None:
        return "".join(_compact(obj, 0))
    return "".join(_pretty(obj, indent, 0))


def _pretty(obj, indent, level):
    pad = " " * (indent * (level + 1))
    end = " " * (indent * level)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{_encode_str(str(k))}: {''.join(_pretty(v, indent, level + 1))}"
                 for k, v in obj.items()]
        yield "{\n" + ",\n".join(items) + "\n" + end + "}"
    elif isinstance(obj, (list, tuple)) and obj:
        items = [pad + "".join(_pretty(v, indent, level + 1)) for v in obj]
        yield "[\n" + ",\n".join(items) + "\n" + end + "]"
    else:
        yield "".join(_compact(obj, 0))


# --- json.dumps / json.loads themselves, for the manager's long-lived processes -------------

_ENCODERS = {}


def std_dumps(obj, ensure_ascii=True, separators=(", ", ": ")):
    """The text ``json.dumps(obj, ensure_ascii=..., separators=...)`` gives (its defaults
    too), without importing ``json`` and ``re`` (the supervisor's memory)."""
    key = (ensure_ascii, separators)
    encoder = _ENCODERS.get(key)
    if encoder is None:
        quote = _json.encode_basestring_ascii if ensure_ascii else _encode_str
        encoder = _ENCODERS[key] = _json.make_encoder(
            None, _default, quote, None, separators[1], separators[0], False, False, True)
    if isinstance(obj, str):
        return quote_str(obj, ensure_ascii)
    return "".join(encoder(obj, 0))


def quote_str(text, ensure_ascii=True):
    return (_json.encode_basestring_ascii if ensure_ascii else _encode_str)(text)


def std_loads(text):
    """``json.loads(text)`` of a document kago wrote: the value, or ValueError when it is
    malformed (NaN and Infinity are refused, as kago never writes them)."""
    try:
        return loads(text, "JSON document")
    except SpecError as e:
        raise ValueError(str(e)) from None
