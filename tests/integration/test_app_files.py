"""Files on the shared mount, through two app processes."""

from __future__ import annotations

import http.client
import threading

import httpx
import pytest

pytestmark = pytest.mark.integration

# Raw request paths, sent as-is (no client-side normalisation of dot segments).
UNSAFE_PATHS = [
    "/files/..",
    "/files/../outside.txt",
    "/files/%2e%2e",
    "/files/%2e%2e%2foutside.txt",
    "/files/..%5coutside.txt",
    "/files/sub/dir.txt",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/files/nul%00byte.txt",
    "/files/.hidden",
    "/files/",
    "/files/" + "x" * 200,
]


def raw_request(port: int, method: str, path: str, body: bytes | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body)
        return connection.getresponse().status
    finally:
        connection.close()


def test_names_that_could_escape_the_mount_get_400(start_apps, fresh_database, workdir, shared_storage):
    (replica,) = start_apps(1, fresh_database)
    before = sorted(workdir.rglob("*"))
    for path in UNSAFE_PATHS:
        assert raw_request(replica.port, "PUT", path, b"attack") == 400, path
        assert raw_request(replica.port, "GET", path) == 400, path
        assert raw_request(replica.port, "DELETE", path) == 400, path
    assert sorted(workdir.rglob("*")) == before  # nothing written anywhere
    assert raw_request(replica.port, "PUT", "/files/fine-name_1.txt", b"ok") == 201


def test_a_file_written_via_one_process_is_read_whole_via_another(start_apps, fresh_database):
    writer, reader = start_apps(2, fresh_database)
    size = 2 * 1024 * 1024
    versions = [bytes([letter]) * size for letter in b"ab"]
    assert httpx.put(f"{writer.url}/files/big.bin", content=versions[0]).status_code == 201

    # Rewrite the file over and over while the other process reads it: every read must
    # be one whole version, never a mix or a short file.
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            httpx.put(f"{writer.url}/files/big.bin", content=versions[n % 2], timeout=10)

    rewriter = threading.Thread(target=rewrite)
    rewriter.start()
    try:
        for _ in range(30):
            read = httpx.get(f"{reader.url}/files/big.bin", timeout=10)
            assert read.status_code == 200
            assert read.content in versions, f"partial read: {len(read.content)} bytes"
    finally:
        stop.set()
        rewriter.join()
    assert httpx.delete(f"{reader.url}/files/big.bin").status_code == 204
    assert httpx.get(f"{writer.url}/files/big.bin").status_code == 404
