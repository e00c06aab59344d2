"""A small HTTP server that answers ``GET /v5/market/kline`` like Bybit V5.

It runs on 127.0.0.1 on an ephemeral port in a background thread, so the client is
exercised over real HTTP (no patching of ``requests``).  It holds a candle series
ending with one candle that has not closed yet at ``fake.now_ms``, serves it with
Bybit's semantics (newest first, prices as strings, ``limit`` default 200 capped at
1000, ``start``/``end`` filtering on open time) and can be scripted per test:

* ``fake.queue(...)`` / ``fake.queue_ret_code(...)``: canned answers served before
  the normal ones (HTTP status, JSON or raw body, headers, a delay);
* ``fake.duplicate_boundary = True``: ``end`` is widened by one interval, so each
  page repeats the oldest candle of the previous page;
* ``fake.remove(i, count)``: cut a gap into the series;
* ``fake.advance(k)``: time moves on by ``k`` candles.

Every request's query parameters are recorded in ``fake.requests``.

Use it from a test module with ``from fake_bybit import fake_bybit`` (a fixture)
or as a context manager ``with FakeBybit() as fake: ...``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

__all__ = ["FakeBybit", "Reply", "fake_bybit", "INTERVAL_MS"]

INTERVAL_MS = {
    **{m: int(m) * 60_000 for m in ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720")},
    "D": 86_400_000,
    "W": 7 * 86_400_000,
}


@dataclass
class Reply:
    """A canned answer: HTTP status, JSON payload or raw body, headers, delay in s."""

    status: int = 200
    payload: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeBybit:
    """A Bybit V5 look-alike holding ``n`` candles of one symbol and interval."""

    def __init__(self, n: int = 3000, *, symbol: str = "BTCUSDT", interval: str = "15",
                 now_ms: int | None = None, seed: int = 0) -> None:
        self.symbol = symbol
        self.interval = interval
        self.step_ms = INTERVAL_MS[interval]
        now = int(time.time() * 1000) if now_ms is None else int(now_ms)
        # the last candle opened before ``now`` and has not closed yet
        self.now_ms = now - now % self.step_ms + self.step_ms // 3
        self._rng = np.random.default_rng(seed)
        last_open = self.now_ms - self.now_ms % self.step_ms
        self.times: list[int] = [last_open - (n - 1 - i) * self.step_ms for i in range(n)]
        self.rows: dict[int, list[str]] = {}
        self._price = 30_000.0
        for ts in self.times:
            self.rows[ts] = self._make_row(ts)
        self.requests: list[dict[str, str]] = []
        self.script: deque[Reply] = deque()
        self.duplicate_boundary = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the series
    def _make_row(self, ts: int) -> list[str]:
        open_ = self._price
        close = round(open_ * float(np.exp(self._rng.normal(0.0, 0.002))), 1)
        high = round(max(open_, close) * (1 + abs(self._rng.normal(0.0, 0.001))), 1)
        low = round(min(open_, close) * (1 - abs(self._rng.normal(0.0, 0.001))), 1)
        volume = round(float(self._rng.uniform(10, 1000)), 3)
        self._price = close
        return [str(ts), repr(open_), repr(high), repr(low), repr(close), repr(volume),
                repr(round(volume * close, 4))]

    def frame_values(self, ts: int) -> list[float]:
        """The six float values (open..turnover) the client should return for ``ts``."""
        return [float(v) for v in self.rows[ts][1:]]

    @property
    def closed_times(self) -> list[int]:
        """Open times of the candles that have closed at ``now_ms``."""
        return [ts for ts in self.times if ts + self.step_ms <= self.now_ms]

    def remove(self, index: int, count: int = 1) -> list[int]:
        """Delete ``count`` candles starting at position ``index`` (a gap); returns them."""
        with self._lock:
            gone = self.times[index:index + count]
            del self.times[index:index + count]
            for ts in gone:
                del self.rows[ts]
        return gone

    def advance(self, k: int) -> None:
        """Let ``k`` intervals pass: ``k`` new candles, the clock moves on."""
        with self._lock:
            for _ in range(k):
                ts = self.times[-1] + self.step_ms
                self.times.append(ts)
                self.rows[ts] = self._make_row(ts)
            self.now_ms += k * self.step_ms

    # ------------------------------------------------------------------- scripting
    def queue(self, status: int = 200, payload: Any = None, *, body: bytes | None = None,
              headers: dict[str, str] | None = None, delay: float = 0.0, times: int = 1) -> None:
        """Serve this answer to the next ``times`` requests, before normal ones."""
        for _ in range(times):
            self.script.append(Reply(status, payload, body, dict(headers or {}), delay))

    def queue_ret_code(self, ret_code: int, ret_msg: str, *, headers: dict[str, str] | None = None,
                       times: int = 1) -> None:
        """Serve a Bybit error envelope (HTTP 200, ``retCode != 0``)."""
        payload = {"retCode": ret_code, "retMsg": ret_msg, "result": {}, "retExtInfo": {},
                   "time": int(time.time() * 1000)}
        self.queue(200, payload, headers=headers, times=times)

    @property
    def request_count(self) -> int:
        return len(self.requests)

    # --------------------------------------------------------------------- serving
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kline_reply(self, params: dict[str, str]) -> Reply:
        """Bybit's answer to a kline query (without any script)."""
        def error(msg: str) -> Reply:
            return Reply(200, {"retCode": 10001, "retMsg": msg, "result": {}, "retExtInfo": {},
                               "time": self.now_ms})

        if params.get("category") not in ("spot", "linear", "inverse"):
            return error("Illegal category")
        if params.get("symbol") != self.symbol:
            return error("params error: Symbol Is Invalid")
        if params.get("interval") != self.interval:
            return error("params error: Interval Is Invalid")
        try:
            limit = int(params.get("limit", "200"))
            start = int(params["start"]) if "start" in params else None
            end = int(params["end"]) if "end" in params else None
        except ValueError:
            return error("params error: limit/start/end must be integers")
        limit = max(1, min(limit, 1000))
        if end is not None and self.duplicate_boundary:
            end += self.step_ms
        with self._lock:
            chosen = [ts for ts in self.times if ts <= self.now_ms
                      and (start is None or ts >= start) and (end is None or ts <= end)]
            rows = [self.rows[ts] for ts in reversed(chosen[-limit:])]
        payload = {"retCode": 0, "retMsg": "OK",
                   "result": {"category": params["category"], "symbol": self.symbol, "list": rows},
                   "retExtInfo": {}, "time": self.now_ms}
        return Reply(200, payload)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append(params)
            reply = self.script.popleft() if self.script else None
        if reply is None:
            reply = self.kline_reply(params) if url.path == "/v5/market/kline" else Reply(404, body=b"not found")
        if reply.delay:
            self._stop.wait(reply.delay)
        body = reply.body if reply.body is not None else json.dumps(reply.payload).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> FakeBybit:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                try:
                    fake._handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBybit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def fake_bybit() -> Iterator[FakeBybit]:
    """A running :class:`FakeBybit` (3000 BTCUSDT 15-minute candles), stopped afterwards."""
    with FakeBybit() as fake:
        yield fake
