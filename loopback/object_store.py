"""An Azure Blob-compatible object store on 127.0.0.1 over TLS: Azurite (npm), with a
server certificate from a test CA made by openssl, for pgBackRest's `repo1-type=azure`.

    with loopback_azurite() as store:
        store.repository        # RepositorySettings for pgBackRest, verifying with the test CA
        store.secret_env        # {"PGBACKREST_REPO1_AZURE_KEY": ...}

pgBackRest 2.45 talks to object stores over TLS only and matches the certificate by host
name, not by IP address, so the certificate names `localhost` and the endpoint is
`localhost:<port>`. Everything lives in a temp dir that is removed on exit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from components.render.pgbackrest import AZURE_KEY_ENV, RepositorySettings

from .binaries import find
from .ports import free_port, wait_for_port
from .processes import kill_tree

# Azurite's built-in development account and its published key
# (https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "pgbackrest"
BLOB_API_VERSION = "2021-08-06"
REQUIRED_BINARIES = ("azurite-blob", "openssl")


@dataclass(frozen=True)
class LoopbackObjectStore:
    port: int
    ca_file: Path

    @property
    def repository(self) -> RepositorySettings:
        return RepositorySettings(type="azure", path="/pgbackrest", retention_full=2, retention_diff=3,
                                  endpoint=f"localhost:{self.port}", bucket=CONTAINER, account=ACCOUNT,
                                  uri_style="path", ca_file=str(self.ca_file))

    @property
    def secret_env(self) -> dict[str, str]:
        return {AZURE_KEY_ENV: ACCOUNT_KEY}

    def blob_names(self) -> list[str]:
        """Every blob in the container (List Blobs), to look at what pgBackRest stored."""
        status, body = self._request("GET", f"/{ACCOUNT}/{CONTAINER}?restype=container&comp=list",
                                     canonical_query="comp:list\nrestype:container")
        assert status == 200, body
        text = body.decode()
        return [part.split("</Name>")[0] for part in text.split("<Name>")[1:]]

    def get_blob(self, name: str) -> bytes:
        status, body = self._request("GET", f"/{ACCOUNT}/{CONTAINER}/{name}")
        assert status == 200, body[:200]
        return body

    def create_container(self) -> None:
        status, body = self._request("PUT", f"/{ACCOUNT}/{CONTAINER}?restype=container", canonical_query="restype:container")
        if status != 201:
            raise RuntimeError(f"Azurite refused to create container {CONTAINER}: {status} {body[:300]!r}")

    def _request(self, method: str, path: str, canonical_query: str = "") -> tuple[int, bytes]:
        """A Shared Key-signed Blob request
        (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key)."""
        headers = {"x-ms-date": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                   "x-ms-version": BLOB_API_VERSION}
        resource = f"/{ACCOUNT}{path.split('?')[0]}" + (f"\n{canonical_query}" if canonical_query else "")
        to_sign = f"{method}\n" + "\n" * 11 + "".join(f"{k}:{v}\n" for k, v in sorted(headers.items())) + resource
        signature = base64.b64encode(hmac.new(base64.b64decode(ACCOUNT_KEY), to_sign.encode(), hashlib.sha256).digest())
        headers |= {"Authorization": f"SharedKey {ACCOUNT}:{signature.decode()}", "Content-Length": "0"}
        connection = http.client.HTTPSConnection("localhost", self.port, timeout=10,
                                                 context=ssl.create_default_context(cafile=str(self.ca_file)))
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def make_test_ca(root: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key): a throwaway CA that signs a
    certificate for `localhost`."""
    def openssl(*args: str) -> None:
        subprocess.run([find("openssl"), *args], check=True, capture_output=True, timeout=60)

    ca_key, ca_crt, key, csr, crt, ext = (root / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "san.ext"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
            "-days", "2", "-subj", "/CN=hastack test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    ext.write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", "2", "-extfile", str(ext))
    for path in (ca_crt, crt, key):
        path.chmod(0o644)  # pgBackRest (as postgres) reads the CA; Azurite reads the key
    return ca_crt, crt, key


@contextmanager
def loopback_azurite() -> Iterator[LoopbackObjectStore]:
    """Azurite's Blob service over HTTPS on a free port, with the container pgBackRest uses."""
    root = Path(tempfile.mkdtemp(prefix="hastack-azurite-"))
    root.chmod(0o755)
    process = None
    try:
        ca_crt, crt, key = make_test_ca(root)
        port = free_port()
        log = open(root / "azurite.log", "ab")
        process = subprocess.Popen(
            [find("azurite-blob"), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--cert", str(crt), "--key", str(key),
             "--location", str(root / "data"), "--disableTelemetry", "--skipApiVersionCheck"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for_port(port, deadline_s=30)
        store = LoopbackObjectStore(port=port, ca_file=ca_crt)
        store.create_container()
        yield store
    finally:
        if process is not None:
            kill_tree(process.pid)
            process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
