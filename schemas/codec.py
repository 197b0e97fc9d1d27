"""The schema codec every service shares: Avro in the Confluent wire format
(magic byte 0, 4-byte big-endian schema id, Avro binary body), with the writer schema
resolved through SCHEMA_REGISTRY_URL when set, else the fixed catalog in this folder.

`ask` also accepts plain JSON objects; decode_ask() turns either form into a validated
InferenceEvent dict or raises RejectedMessage with a machine-readable reason, so the
caller can dead-letter it.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import struct
import threading
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

HERE = Path(__file__).resolve().parent
MAGIC = 0
_HEADER = struct.Struct(">bI")


class CodecError(ValueError):
    """Bytes that cannot be read with any known schema."""


class RejectedMessage(ValueError):
    """An `ask` message that is not a valid InferenceEvent. `reason` is a stable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------------------
# Catalog and registry
# ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _catalog() -> dict[int, dict[str, str]]:
    raw = json.loads((HERE / "catalog.json").read_text())["schemas"]
    return {int(k): v for k, v in raw.items()}


@lru_cache(maxsize=None)
def _parse(schema_json: str) -> Any:
    return fastavro.parse_schema(json.loads(schema_json), named_schemas={})


def schema_text(schema_id: int) -> str:
    entry = _catalog().get(schema_id)
    if entry is None:
        raise KeyError(schema_id)
    return (HERE / entry["file"]).read_text()


def subjects() -> dict[str, list[int]]:
    """subject -> schema ids, oldest first."""
    out: dict[str, list[int]] = {}
    for sid, entry in sorted(_catalog().items()):
        out.setdefault(entry["subject"], []).append(sid)
    return out


@lru_cache(maxsize=None)
def latest_id(subject: str) -> int:
    ids = subjects().get(subject)
    if not ids:
        raise KeyError(f"no schema for subject {subject!r} in schemas/catalog.json")
    return ids[-1]


@lru_cache(maxsize=None)
def parsed(schema_id: int) -> Any:
    """The catalog is fixed for the life of the process: read and parse each schema once (the
    hot path encodes and decodes several records per event)."""
    return _parse(schema_text(schema_id))


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(s) for s in schema]
    return schema


@lru_cache(maxsize=None)
def _plain(schema_id: int) -> Any:
    """A catalog schema with its logical types removed: same binary encoding, but
    timestamp-millis come back as the epoch milliseconds the code base speaks, without the
    round trip through datetime (decoding is ~2x faster; a hot path decodes each event 4 times)."""
    return fastavro.parse_schema(_without_logical_types(json.loads(schema_text(schema_id))), named_schemas={})


class SchemaRegistry:
    """Resolves writer schema ids through a Confluent-compatible registry (GET /schemas/ids/N),
    falling back to nothing: an unknown id is an error the caller dead-letters."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._cache: dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> Any:
        with self._lock:
            if schema_id in self._cache:
                return self._cache[schema_id]
        try:
            with urllib.request.urlopen(f"{self.url}/schemas/ids/{schema_id}", timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise KeyError(schema_id) from None
            raise
        schema = _parse(body["schema"])
        with self._lock:
            self._cache[schema_id] = schema
        return schema


class Codec:
    """Encode and decode records of one subject. Writers always use the newest version in
    the catalog; readers resolve any older writer version to it (Avro schema resolution)."""

    def __init__(self, registry: SchemaRegistry | None = None):
        self.registry = registry

    def writer_schema(self, schema_id: int) -> Any:
        if self.registry is not None:
            try:
                return self.registry.get(schema_id)
            except KeyError:
                pass
        try:
            return parsed(schema_id)
        except KeyError:
            raise CodecError(f"unknown schema id {schema_id}") from None

    def encode(self, subject: str, record: dict[str, Any], schema_id: int | None = None) -> bytes:
        sid = latest_id(subject) if schema_id is None else schema_id
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, sid))
        fastavro.schemaless_writer(buf, parsed(sid), record)
        return buf.getvalue()

    def decode(self, data: bytes, subject: str | None = None) -> tuple[dict[str, Any], int]:
        """Decode wire-format bytes; when `subject` is given, resolve to its newest schema."""
        if len(data) < 5 or data[0] != MAGIC:
            raise CodecError("not in the Confluent wire format (magic byte 0 + 4-byte schema id)")
        _, sid = _HEADER.unpack_from(data)
        if self.registry is None and sid in _catalog() and (subject is None or latest_id(subject) == sid):
            # Written with the catalog schema the reader wants: no resolution, no datetimes.
            # (Every logical type in schemas/ is a top-level timestamp-millis, which the slow
            # path below turns into epoch milliseconds as well.)
            body = io.BytesIO(data)
            body.seek(5)
            try:
                return fastavro.schemaless_reader(body, _plain(sid), None), sid
            except UnicodeDecodeError as exc:
                raise CodecError(f"a string in the Avro body is not valid UTF-8 (byte {exc.start})") from None
            except Exception as exc:
                raise CodecError(f"Avro body does not match schema id {sid}: {exc}") from None
        writer = self.writer_schema(sid)
        reader = parsed(latest_id(subject)) if subject else None
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[5:]), writer, reader)
        except UnicodeDecodeError as exc:
            raise CodecError(f"a string in the Avro body is not valid UTF-8 (byte {exc.start})") from None
        except Exception as exc:  # fastavro raises several types on corrupt bodies
            raise CodecError(f"Avro body does not match schema id {sid}: {exc}") from None
        # timestamp-millis come back as datetimes; the code base speaks epoch milliseconds.
        for key, value in record.items():
            if isinstance(value, _dt.datetime):
                record[key] = int(value.timestamp() * 1000)
        return record, sid


ASK_SUBJECT = "ask-value"
OUTCOMES = ("success", "failure", "escalated", "unknown")
_REQUIRED_STR = ("event_id", "tenant", "service", "model", "prompt", "response")
_OPTIONAL_STR = ("tool_calls", "task_hint", "parent_event_id")


def decode_ask(data: bytes, codec: Codec, max_prompt_bytes: int) -> tuple[dict[str, Any], int]:
    """Bytes from `ask` -> (normalised InferenceEvent, writer schema id; 0 for JSON).

    Raises RejectedMessage(reason, detail). Reasons: empty, invalid_utf8, not_avro_or_json,
    unknown_schema_id, avro_decode_error, not_an_object, missing_field, wrong_type,
    empty_event_id, bad_outcome, negative_value, prompt_too_large.
    """
    if not data:
        raise RejectedMessage("empty", "the message has no bytes")
    if data[0] == MAGIC:
        if len(data) < 5:
            raise RejectedMessage("not_avro_or_json", "starts with the Avro magic byte but is shorter than the 5-byte header")
        sid = _HEADER.unpack_from(data)[1]
        try:
            codec.writer_schema(sid)
        except CodecError:
            raise RejectedMessage("unknown_schema_id", f"schema id {sid} is neither in the registry nor in schemas/catalog.json") from None
        try:
            record, sid = codec.decode(data, ASK_SUBJECT)
        except CodecError as exc:
            raise RejectedMessage("avro_decode_error", str(exc)) from None
        event = _normalise(record, from_json=False)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RejectedMessage("invalid_utf8", f"not Avro, and not valid UTF-8 at byte {exc.start}") from None
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise RejectedMessage("not_avro_or_json", f"neither the Avro wire format nor JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise RejectedMessage("not_an_object", f"JSON must be an object, got {type(obj).__name__}")
        event = _normalise(obj, from_json=True)
        sid = 0
    size = len(event["prompt"].encode("utf-8"))
    if size > max_prompt_bytes:
        raise RejectedMessage("prompt_too_large", f"prompt is {size} bytes; the limit (DISTILLERY_MAX_PROMPT_BYTES) is {max_prompt_bytes}")
    return event, sid


def _normalise(obj: dict[str, Any], from_json: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _REQUIRED_STR:
        if name not in obj or obj[name] is None:
            raise RejectedMessage("missing_field", f"required field {name!r} is missing")
        if not isinstance(obj[name], str):
            raise RejectedMessage("wrong_type", f"{name!r} must be a string, got {type(obj[name]).__name__}")
        out[name] = obj[name]
    if not out["event_id"].strip():
        raise RejectedMessage("empty_event_id", "event_id is empty")
    out["ts"] = _timestamp_ms(obj.get("ts"), from_json)
    for name, kind in (("latency_ms", float), ("input_tokens", int), ("output_tokens", int)):
        if name not in obj or obj[name] is None:
            raise RejectedMessage("missing_field", f"required field {name!r} is missing")
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RejectedMessage("wrong_type", f"{name!r} must be a number, got {type(value).__name__}")
        if kind is int and float(value) != int(value):
            raise RejectedMessage("wrong_type", f"{name!r} must be a whole number, got {value!r}")
        if value < 0:
            raise RejectedMessage("negative_value", f"{name!r} is negative ({value})")
        out[name] = kind(value)
    for name in ("cost_usd", "gpu_seconds"):
        value = obj.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RejectedMessage("wrong_type", f"{name!r} must be a number or null, got {type(value).__name__}")
            if value < 0:
                raise RejectedMessage("negative_value", f"{name!r} is negative ({value})")
            value = float(value)
        out[name] = value
    outcome = obj.get("outcome", "unknown")
    if outcome is None:
        outcome = "unknown"
    if outcome not in OUTCOMES:
        raise RejectedMessage("bad_outcome", f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    out["outcome"] = outcome
    for name in _OPTIONAL_STR:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            if name == "tool_calls" and from_json and isinstance(value, (list, dict)):
                value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            else:
                raise RejectedMessage("wrong_type", f"{name!r} must be a string or null, got {type(value).__name__}")
        out[name] = value
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        raise RejectedMessage("wrong_type", f"'metadata' must be an object of strings, got {type(meta).__name__}")
    clean: dict[str, str] = {}
    for k, v in meta.items():
        if not isinstance(v, str):
            if isinstance(v, (int, float, bool)):
                v = json.dumps(v)
            else:
                raise RejectedMessage("wrong_type", f"metadata[{k!r}] must be a string, got {type(v).__name__}")
        clean[str(k)] = v
    out["metadata"] = clean
    return out


def _timestamp_ms(value: Any, from_json: bool) -> int:
    import datetime as dt

    if value is None:
        raise RejectedMessage("missing_field", "required field 'ts' is missing")
    if isinstance(value, dt.datetime):  # fastavro returns aware datetimes for timestamp-millis
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, bool):
        raise RejectedMessage("wrong_type", "'ts' must be epoch milliseconds or an ISO-8601 string")
    if isinstance(value, (int, float)):
        if value < 0:
            raise RejectedMessage("negative_value", "'ts' is negative")
        return int(value)
    if isinstance(value, str) and from_json:
        try:
            parsed_ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RejectedMessage("wrong_type", f"'ts' {value!r} is not epoch milliseconds nor ISO-8601") from None
        if parsed_ts.tzinfo is None:
            parsed_ts = parsed_ts.replace(tzinfo=dt.timezone.utc)
        return int(parsed_ts.timestamp() * 1000)
    raise RejectedMessage("wrong_type", f"'ts' must be epoch milliseconds or an ISO-8601 string, got {type(value).__name__}")


def default_codec(schema_registry_url: str | None = None) -> Codec:
    return Codec(SchemaRegistry(schema_registry_url) if schema_registry_url else None)
