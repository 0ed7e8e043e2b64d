"""Client against misbehaving servers (raw sockets on 127.0.0.1): every network failure is a ServingError, and
`timeout=` is a deadline for the whole request."""
import contextlib
import socket
import struct
import threading
import time

import numpy as np
import pytest

from cnnzoo.serving import Client, ServingError

IMAGE = np.zeros((1, 8, 8, 3), np.uint8)


def _read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


@contextlib.contextmanager
def raw_server(behaviour):
    """A TCP server on 127.0.0.1 that reads each HTTP request, then runs `behaviour(conn, stop)`."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                _read_request(conn)
                behaviour(conn, stop)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1/models/digits"
    finally:
        stop.set()
        thread.join(10)
        server.close()


def _trickle(conn, stop):   # a valid answer, one byte at a time: no single read ever waits long
    body = b'{"predictions": [[0.5, 0.5]' + b" " * 40 + b"]}"
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    for byte in answer:
        if stop.wait(0.05):
            return
        conn.sendall(bytes([byte]))


def _trickle_body(conn, stop):   # a body that never completes (for 5 s: a client without a deadline fails, not hangs)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100):
        if stop.wait(0.05):
            return
        conn.sendall(b" ")


def _close_early(conn, stop):   # headers promise 100 bytes, 10 arrive, then the server closes
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                 b'{"predicti')


def _close_silently(conn, stop):   # reads the request and closes without a byte
    pass


def _reset(conn, stop):   # SO_LINGER 0: close sends a TCP reset
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _garbage(conn, stop):
    conn.sendall(b"this is not HTTP\r\n\r\n")


@pytest.mark.parametrize("behaviour", [_trickle, _trickle_body], ids=["headers", "body"])
def test_timeout_is_a_deadline_for_the_whole_request(behaviour):
    with raw_server(behaviour) as url:
        start = time.perf_counter()
        with pytest.raises(ServingError, match="within timeout=0.5 s"):
            Client(url, timeout=0.5).predict(IMAGE)
        assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize("behaviour,message", [
    (_close_early, "broke during POST"),
    (_close_silently, "broke during POST"),
    (_reset, "broke during POST|Cannot reach"),
    (_garbage, "broke during POST"),
], ids=["early-close", "silent-close", "reset", "not-http"])
def test_every_network_failure_is_a_serving_error(behaviour, message):
    with raw_server(behaviour) as url:
        start = time.perf_counter()
        with pytest.raises(ServingError, match=message) as info:
            Client(url, timeout=5).predict(IMAGE)
        assert time.perf_counter() - start < 4
        assert info.value.url.startswith(url) and info.value.detail
