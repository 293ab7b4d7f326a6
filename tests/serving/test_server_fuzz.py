"""Fuzzing the real server over real sockets (hypothesis, bounded): whatever bytes a client sends,
the server answers below 500 or closes, never stalls past the request timeout, and keeps serving.
The in-process twin with many more examples is tests/unit/serving/test_serving_fuzz.py."""

from __future__ import annotations

import os
import re
import socket

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Server

EXAMPLES = max(20, int(os.environ.get("MODELOPS_FUZZ_EXAMPLES", "300")) // 5)
GOOD = [
    b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
    b'POST /v2/models/iris/infer HTTP/1.1\r\nContent-Length: 75\r\n\r\n'
    b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}]}',
    b'POST /v1/models/iris:predict HTTP/1.1\r\nContent-Length: 27\r\n\r\n{"instances":[[1,2,3,4.5]]}',
]
streams = st.lists(
    st.one_of(
        st.sampled_from(GOOD),
        st.binary(max_size=60),
        st.sampled_from(GOOD).flatmap(lambda g: st.integers(0, len(g)).map(lambda k: g[:k])),
        st.sampled_from([b"\r\n", b"Content-Length: 12\r\n", b"Transfer-Encoding: chunked\r\n", b"\xff"]),
    ),
    min_size=1,
    max_size=6,
).map(b"".join)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams)
def test_no_5xx_no_stall_over_sockets(iris_server: Server, stream: bytes) -> None:
    with socket.create_connection((iris_server.host, iris_server.port), timeout=10) as sock:
        sock.sendall(stream)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
    # (recv's 10 s timeout is the stall bound: the server's request timeout is 1 s.)
    codes = [int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)]
    assert all(code < 500 for code in codes), reply[:300]
    assert requests.get(iris_server.url + "/v2/health/live", timeout=10).status_code == 200
