"""The host's side of HTTP streaming (host-protocol.md §9): it forwards the client's HTTP
request to the worker's HttpUri with an `x-ms-invocation-id` header, retrying a failed
connection up to 10 attempts in all (delays 50 ms doubling, capped at 250 ms), and passes the
response back as it arrives. Plain http.client (HTTP/1.1), so request bodies can be sent
chunked from an iterator and response bodies read piece by piece."""
import http.client
import time
from urllib.parse import urlsplit

HEADER = "x-ms-invocation-id"
ATTEMPTS = 10


class ProxyError(ConnectionError):
    def __init__(self, message, attempts):
        super().__init__(message)
        self.attempts = attempts


def connect(uri, timeout=60):
    """An open HTTPConnection to uri → (connection, attempts used)."""
    u = urlsplit(uri)
    delay = 0.05
    for attempt in range(1, ATTEMPTS + 1):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            conn.connect()
            return conn, attempt
        except OSError as exc:
            conn.close()
            if attempt == ATTEMPTS:
                raise ProxyError(f"Failed to proxy request: {exc}", attempt) from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def send(uri, method, path, invocation_id=None, headers=None, body=None, timeout=60):
    """Forwards one request (body: bytes, an iterable of bytes sent chunked, or None) and
    returns the open connection; read the answer with conn.getresponse()."""
    conn, _ = connect(uri, timeout)
    hdrs = dict(headers or {})
    if invocation_id is not None:
        hdrs[HEADER] = invocation_id
    chunked = body is not None and not isinstance(body, (bytes, bytearray))
    conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
    return conn


def forward(uri, method, path, invocation_id=None, **kw):
    """send() then the whole response → (status, headers, body)."""
    conn = send(uri, method, path, invocation_id, **kw)
    try:
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()
