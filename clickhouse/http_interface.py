"""ClickHouse's HTTP query interface, served read-only on 127.0.0.1 by the process that owns an
embedded chDB store (chDB has no listener of its own and allows one process per data path).

Speaks enough of the protocol for curl, clickhouse-connect's HTTP client and Grafana's
ClickHouse datasource: the query in the `query` parameter and/or the request body,
`database`, `default_format`, `param_<name>` query parameters, other parameters as settings.
The engine itself enforces read-only (readonly=2), so no statement can change the store.
"""
from __future__ import annotations

import email.policy
import json
import logging
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from email.parser import BytesParser
from urllib.parse import parse_qs, urlparse

from clickhouse.client import connect

log = logging.getLogger(__name__)

# HTTP-interface parameters that are not query settings.
_NOT_SETTINGS = {"query", "database", "default_format", "query_id", "session_id", "session_timeout",
                 "session_check", "user", "password", "compress", "decompress", "buffer_size",
                 "wait_end_of_query", "client_protocol_version", "quota_key", "enable_http_compression",
                 "send_progress_in_http_headers", "http_headers_progress_interval_ms", "role"}
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")


class QueryInterface:
    """A read-only HTTP front for one chDB store. start() runs it on a daemon thread."""

    def __init__(self, chdb_url: str, port: int, host: str = "127.0.0.1"):
        self.client = connect(chdb_url, readonly=True)
        self.lock = threading.Lock()
        interface = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep the worker's log for the stream
                log.debug("http %s", fmt % args)

            def do_GET(self):
                interface.handle(self, b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                interface.handle(self, self.rfile.read(length) if length else b"")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "QueryInterface":
        self.thread = threading.Thread(target=self.server.serve_forever, name="clickhouse-http", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        url = urlparse(req.path)
        if url.path == "/ping" or (url.path == "/" and not body and "query" not in parse_qs(url.query)):
            return self._reply(req, 200, b"Ok.\n", "text/plain")
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        ctype = req.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            # Large queries and parameters arrive as form fields (as ClickHouse's server accepts).
            params.update(_form_fields(ctype, body))
            body = b""
        if "client_protocol_version" in params:
            # Native protocol revisions are a server feature we do not emulate; the client
            # falls back to protocol 0 when this probe fails.
            return self._error(req, 400, 115, "client_protocol_version is not supported by this interface")
        query = params.get("query", "")
        text = body.decode("utf-8", errors="replace")
        query = f"{query}\n{text}" if query and text else (query or text)
        if not query.strip():
            return self._error(req, 400, 62, "Empty query")
        fmt = None
        if not _FORMAT_CLAUSE.search(query.strip()):
            fmt = params.get("default_format") or "TabSeparated"
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in _NOT_SETTINGS and not k.startswith("param_")}
        settings.pop("readonly", None)
        try:
            with self.lock:
                if params.get("database"):
                    self.client.database = params["database"]
                data = self.client.raw_query(_bind(query, bind), settings=settings or None, fmt=fmt)
        except Exception as exc:
            message = str(exc)
            match = _ERROR_CODE.search(message)
            code = int(match.group(1)) if match else 1000
            status = 403 if code == 164 else 400 if code in (62, 47, 46, 60, 81, 36) else 500
            return self._error(req, status, code, message)
        used_format = fmt or _FORMAT_CLAUSE.search(query.strip()).group(1)
        self._reply(req, 200, data, _content_type(used_format), {"X-ClickHouse-Format": used_format})

    def _reply(self, req, status: int, data: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.send_header("X-ClickHouse-Query-Id", str(uuid.uuid4()))
        req.send_header("X-ClickHouse-Server-Display-Name", "distillery-chdb")
        req.send_header("X-ClickHouse-Timezone", "UTC")
        req.send_header("X-ClickHouse-Summary", json.dumps({"read_rows": "0", "read_bytes": "0", "written_rows": "0",
                                                            "written_bytes": "0", "total_rows_to_read": "0",
                                                            "result_rows": "0", "result_bytes": str(len(data))}))
        for k, v in (extra or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)

    def _error(self, req, status: int, code: int, message: str) -> None:
        text = message if message.startswith("Code:") else f"Code: {code}. DB::Exception: {message}"
        self._reply(req, status, (text.rstrip() + "\n").encode(), "text/plain; charset=UTF-8",
                    {"X-ClickHouse-Exception-Code": str(code)})


_PLACEHOLDER = re.compile(r"\{(\w+):([^{}]+)\}")


def _bind(query: str, values: dict[str, str]) -> str:
    """Server-side parameters: {name:Type} becomes CAST('<text>' AS Type), parsed by the engine
    from the parameter's text form exactly as a ClickHouse server does."""
    def literal(m: re.Match) -> str:
        name, ch_type = m.group(1), m.group(2).strip()
        if name not in values:
            return m.group(0)
        raw = values[name]
        if re.fullmatch(r"(Nullable\(|LowCardinality\()*(String|FixedString\(\d+\))\)*", ch_type):
            raw = _unescape(raw)   # a String parameter arrives in escaped text form (\' \\ \t ...)
        text = raw.replace("\\", "\\\\").replace("'", "\\'")
        return f"CAST('{text}' AS {ch_type})"
    return _PLACEHOLDER.sub(literal, query) if values else query


_ESCAPES = {"\\\\": "\\", "\\'": "'", "\\t": "\t", "\\n": "\n", "\\0": "\0", "\\r": "\r", "\\b": "\b", "\\f": "\f"}
_ESCAPE = re.compile(r"\\[\\'tn0rbf]")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _form_fields(ctype: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=email.policy.HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            value = part.get_payload(decode=True).decode("utf-8", errors="replace")
            fields[name] = value
    return fields


def _content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f in ("native", "rowbinary", "rowbinarywithnamesandtypes", "parquet", "arrow", "arrowstream"):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"
