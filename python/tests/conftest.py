"""Fixtures of the hpsearch package's tests: a real coordinator (`hpsearch serve`) per test, on a free 127.0.0.1
port over a temp-dir database, started through the package itself (hpsearch.local) or, for TLS, by hand.

Run by ctest (tests/CMakeLists.txt sets HPSEARCH_BIN to the build's hpsearch); by hand:
    HPSEARCH_BIN=build/bin/hpsearch /usr/bin/python3 -m pytest python/tests
"""
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import hpsearch  # noqa: E402

# Short leases so a dead client's trial comes back within the test (ten heartbeats to a ttl, so a loaded
# machine does not lose a live lease); ticks often enough to see it.
FAST_LEASES = ("--lease-ttl", "3", "--heartbeat-interval", "0.3", "--tick", "0.05")


@pytest.fixture
def client(tmp_path):
    with hpsearch.local(str(tmp_path / "results.db"), serve_args=FAST_LEASES) as c:
        yield c


def openssl(*args):
    subprocess.run(["/usr/bin/openssl", *args], check=True, capture_output=True)


@pytest.fixture
def tls_server(tmp_path):
    """A coordinator over TLS with a token: (address, ca_path, token_path, db_path)."""
    d = tmp_path
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2", "-subj", "/CN=hpsearch test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            str(d / "server.key"), "-out", str(d / "server.csr"), "-subj", "/CN=localhost")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "2", "-extfile", str(d / "server.ext"))
    token = d / "token"
    token.write_text("5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee\n")
    os.chmod(token, 0o600)
    db = str(d / "results.db")
    log_path = d / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([hpsearch.find_binary(), "serve", "--db", db, "--listen", "127.0.0.1:0",
                                    "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"),
                                    "--auth-token-file", str(token), *FAST_LEASES],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            text = log_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("hpsearch serve: listening on "):
                    address = line.split()[4]
            assert process.poll() is None, text
            assert time.monotonic() < deadline, text
            time.sleep(0.02)
        yield address, str(d / "ca.pem"), str(token), db
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
