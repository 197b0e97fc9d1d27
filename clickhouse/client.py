"""One way to reach ClickHouse from a CLICKHOUSE_URL: a server over HTTP(S), or the embedded
chDB engine through the same clickhouse-connect client API."""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client


def connect(url: str, readonly: bool = False, **kwargs: Any) -> Client:
    """A clickhouse-connect client for `url` (http(s)://user:pass@host:port/db or chdb:///abs/path).

    readonly=True gives a client whose every statement the engine refuses unless it only
    reads (readonly=2: read-only, but per-query settings such as output formats still work).
    """
    parsed = urlparse(url)
    settings = dict(kwargs.pop("settings", {}) or {})
    if readonly:
        settings["readonly"] = 2
    if parsed.scheme == "chdb":
        return clickhouse_connect.get_client(dsn=f"chdb://{parsed.path}", settings=settings, **kwargs)
    if parsed.scheme in ("http", "https"):
        database = parsed.path.strip("/") or "default"
        return clickhouse_connect.get_client(
            host=parsed.hostname,
            port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
            username=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            database=database,
            secure=parsed.scheme == "https",
            settings=settings,
            **kwargs,
        )
    raise ValueError(f"unsupported CLICKHOUSE_URL scheme {parsed.scheme!r}")


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
