"""Result serializers: turn task and flow return values into stored bytes and back."""

from __future__ import annotations

import json
import pickle
from typing import Any

from legato.errors import ConfigurationError, ResultNotAvailableError, ResultNotSerializableError
from legato.records import StoredResult

SERIALIZERS = ("pickle", "json", "cloudpickle")


def check_serializer(name: str) -> str:
    if name not in SERIALIZERS:
        raise ConfigurationError(
            f"unknown result_serializer {name!r}; use one of: {', '.join(SERIALIZERS)}"
        )
    return name


def serialize(value: Any, serializer: str, what: str) -> StoredResult:
    """Encode ``value``; ``what`` names the task or flow for the error message."""
    try:
        if serializer == "pickle":
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        elif serializer == "json":
            payload = json.dumps(value, separators=(",", ":")).encode()
        else:
            import cloudpickle

            payload = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ResultNotSerializableError(
            what, _type_name(value), serializer, f"{type(exc).__name__}: {exc}"
        ) from exc
    return StoredResult(serializer=serializer, payload=payload)


def serialize_fast(value: Any, serializer: str) -> StoredResult | None:
    """The common case (pickle) with no error handling; None means use `serialize`."""
    if serializer == "pickle":
        return StoredResult("pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return None


def deserialize(stored: StoredResult | None, what: str) -> Any:
    if stored is None:
        raise ResultNotAvailableError(
            f"the result of {what} was not stored (persist_result=False?); it cannot be read"
        )
    if stored.serializer == REFERENCE:
        stored = read_reference(stored, what)
    try:
        if stored.serializer == "json":
            return json.loads(stored.payload)
        if stored.serializer == "cloudpickle":
            import cloudpickle

            return cloudpickle.loads(stored.payload)
        return pickle.loads(stored.payload)
    except Exception as exc:
        raise ResultNotAvailableError(
            f"the stored result of {what} cannot be decoded with '{stored.serializer}' "
            f"({type(exc).__name__}: {exc}); is the code that defines its type importable?"
        ) from exc


# A result kept in result storage; the store holds its URL and size (JSON).
REFERENCE = "reference"


def write_reference(storage: str, name: str, data: bytes) -> StoredResult:
    """Write cloudpickled ``data`` to ``storage`` (a folder or an fsspec URL) as ``name``;
    the StoredResult that stands for it in the store."""
    url = f"{storage}/{name}"
    if "://" in storage:
        with _fsspec_open(url, "wb") as out:
            out.write(data)
    else:
        import os

        os.makedirs(os.path.dirname(url), exist_ok=True)
        partial = f"{url}.partial"
        with open(partial, "wb") as out:
            out.write(data)
        os.replace(partial, url)  # a reader never sees half a file
    payload = json.dumps({"url": url, "size": len(data), "serializer": "cloudpickle"})
    return StoredResult(serializer=REFERENCE, payload=payload.encode())


def read_reference(stored: StoredResult, what: str) -> StoredResult:
    """The bytes a reference stands for, read back from result storage."""
    reference = json.loads(stored.payload)
    url = str(reference["url"])
    try:
        if "://" in url:
            with _fsspec_open(url, "rb") as source:
                data = source.read()
        else:
            with open(url, "rb") as source:
                data = source.read()
    except OSError as exc:
        raise ResultNotAvailableError(
            f"the result of {what} was kept in result storage at {url}, which cannot be read "
            f"({type(exc).__name__}: {exc}); restore the file or run the task again"
        ) from exc
    return StoredResult(serializer=str(reference.get("serializer", "cloudpickle")), payload=data)


def _fsspec_open(url: str, mode: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise ConfigurationError(
            f"result storage at {url} needs the 'fsspec' package (and the one for its "
            f"protocol, such as s3fs); install it with: pip install fsspec"
        ) from None
    return fsspec.open(url, mode)


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
