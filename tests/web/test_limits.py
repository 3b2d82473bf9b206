"""Limits that hold under hostile input: bodies counted as they stream (chunked too), files cut
at their limit and spooled to disk, the API rate-limited per client, X-Forwarded-For believed
only from trusted proxies. The memory test runs ``frontdoor web`` as its own process and reads
its RSS from /proc while the attacks of issue 9 stream in (never built in the test's memory)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, frontdoor
from tests.web.conftest import ServerFactory, free_port

MB = 1024 * 1024


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture
def web_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``python -m frontdoor web`` on a free port, with no broker (nothing here reaches Kafka)."""
    port = free_port()
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path / "var"),
           "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1", "FRONTDOOR_CONNECT_RETRIES": "1",
           "FRONTDOOR_WEB_SECRET": "s", "FRONTDOOR_API_RATE_LIMIT": "1000"}
    frontdoor("db", "upgrade", env=env, timeout=120)  # the console (same process) needs its tables
    process = subprocess.Popen([sys.executable, "-m", "frontdoor", "web", "--port", str(port)], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/contact", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "frontdoor web did not start"
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stream_attack(port: int, path: str, head: bytes, chunk: bytes, total: int,
                  content_type: str) -> tuple[int, int]:
    """POST ``head`` then ``chunk`` repeated to ``total`` bytes, chunked, over a raw socket; stop as
    soon as the server answers. Returns (status, bytes sent before the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())

        def send(data: bytes) -> None:
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        def answered() -> bool:
            return bool(select.select([sock], [], [], 0)[0])

        send(head)
        sent = len(head)
        while sent < total and not answered():
            try:
                send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        if sent >= total:
            sock.sendall(b"0\r\n\r\n")
        response = b""
        while b"\r\n" not in response:
            data = sock.recv(4096)
            if not data:
                break
            response += data
        return int(response.split(b" ", 2)[1]), sent
    finally:
        sock.close()


@pytest.mark.slow
def test_no_request_grows_the_process_by_more_than_twice_its_limit(web_process: tuple[str, int]) -> None:
    base, pid = web_process
    port = int(base.rsplit(":", 1)[1])
    with httpx.Client(base_url=base, timeout=30) as client:  # warm every path once
        warm = client.post("/api/enquiries", json={"email": "a@example.com", "message": "warm"})
        assert warm.status_code == 202
        client.post("/contact", files=[("attachments", ("a.txt", b"x" * (2 * MB), "text/plain"))])
    before = rss_kb(pid)
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb(pid))
            time.sleep(0.02)

    results: list[tuple[str, int, int]] = []
    api_limit, form_limit = 1 * MB, 5 * 10 * MB + MB
    boundary = "fdattack" + uuid.uuid4().hex

    def api() -> None:
        status, sent = stream_attack(port, "/api/enquiries", b'{"email":"a@example.com","message":"',
                                     b"A" * 65536, 200 * MB, "application/json")
        results.append(("api", status, sent))

    def form() -> None:
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"; "
                'filename="f0.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-').encode()
        status, sent = stream_attack(port, "/contact", head, b"0" * 65536, 5 * 150 * MB,
                                     f"multipart/form-data; boundary={boundary}")
        results.append(("form", status, sent))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    attackers = [threading.Thread(target=api) for _ in range(4)]
    attackers += [threading.Thread(target=form) for _ in range(3)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join(timeout=120)
    done.set()
    watcher.join()

    assert sorted((kind, status) for kind, status, _ in results) == [("api", 413)] * 4 + [("form", 413)] * 3
    for kind, _, sent in results:  # reading stopped at the limit, not at the end of the upload
        assert sent < (api_limit if kind == "api" else form_limit) + 8 * MB, (kind, sent)
    growth_kb = peak - before
    print(f"frontdoor web RSS {before} KB before, peak {peak} KB during the attacks: +{growth_kb} KB")
    # four API requests and three forms at once: each may hold at most twice its limit in memory, and
    # the forms' files go to disk past 1 MB, so the whole attack stays under 2 x (4 x 1 MB + 3 x 1 MB)
    assert growth_kb < 2 * (4 * api_limit + 3 * MB) // 1024, f"grew {growth_kb} KB (from {before} KB)"


@pytest.mark.kafka
def test_the_api_is_rate_limited_per_client_and_only_trusted_proxies_name_the_client(
        web_server: ServerFactory) -> None:
    server = web_server(api_rate_limit=2, api_rate_window_s=3600,
                        trusted_proxies=(ip_network("127.0.0.1/32"),))
    enquiry = {"email": "a@example.com", "message": "Pothole"}
    with server.client() as client:
        def post(forwarded: str, key: str | None = None) -> httpx.Response:
            headers = {"X-Forwarded-For": forwarded} | ({"Idempotency-Key": key} if key else {})
            return client.post("/api/enquiries", json=enquiry, headers=headers)

        first = post("203.0.113.7", "retry-key-0001")
        assert [first.status_code, post("203.0.113.7").status_code] == [202, 202]
        refused = post("203.0.113.7")
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 3600
        assert "Too many" in refused.json()["message"]
        again = post("203.0.113.7", "retry-key-0001")  # a retry of a taken enquiry is not a new one
        assert again.status_code == 202 and again.json()["reference"] == first.json()["reference"]
        # the proxy (127.0.0.1) is trusted: the address it names is the client, not the proxy
        assert post("198.51.100.9").status_code == 202
        # a client cannot pose as another by adding its own X-Forwarded-For in front
        assert post("203.0.113.99, 203.0.113.7").status_code == 429

    untrusted = web_server(api_rate_limit=1, api_rate_window_s=3600)
    with untrusted.client() as client:
        one = client.post("/api/enquiries", json=enquiry, headers={"X-Forwarded-For": "192.0.2.1"})
        # no trusted proxies: the header is ignored, the peer is the client, and it has had its one
        two = client.post("/api/enquiries", json=enquiry, headers={"X-Forwarded-For": "192.0.2.2"})
        assert (one.status_code, two.status_code) == (202, 429)


@pytest.mark.kafka
def test_a_file_too_large_is_cut_while_streaming_and_the_form_keeps_what_was_typed(
        web_server: ServerFactory) -> None:
    from tests.web.test_contact_form import open_form, shown_value

    server = web_server(upload_max_bytes=64 * 1024)
    with server.client() as browser:
        fields = {**open_form(browser), "email": "a@example.com", "message": "Photos of the fly-tipping"}
        big = b"%PDF-" + b"0" * MB  # under the form's whole-body limit, far over the file limit
        page = browser.post("/contact", data=fields,
                            files=[("attachments", ("big.pdf", big, "application/pdf"))])
        assert page.status_code == 422
        assert "big.pdf must be smaller than 64 KB" in page.text
        assert shown_value(page.text, "message") == "Photos of the fly-tipping"
        # past the whole body's limit (5 files x 64 KB + 1 MB), reading stops: 413, the form again
        huge_file = ("huge.pdf", b"%PDF-" + b"0" * (3 * MB), "application/pdf")
        huge = browser.post("/contact", data=fields, files=[("attachments", huge_file)])
        assert huge.status_code == 413 and "too large" in huge.text


@pytest.mark.kafka
def test_a_full_blob_store_takes_nothing_and_the_form_keeps_what_was_typed(web_server: ServerFactory) -> None:
    from tests.web.test_contact_form import PNG, open_form, shown_value

    server = web_server()

    def disk_full(data: bytes, media_type: str = "") -> object:
        raise OSError(28, "No space left on device")

    server.blobs.put = disk_full  # type: ignore[method-assign,assignment]
    with server.client() as browser:
        fields = {**open_form(browser), "email": "a@example.com", "message": "Photo of the pothole"}
        page = browser.post("/contact", data=fields, files=[("attachments", ("hole.png", PNG, "image/png"))])
    assert page.status_code == 503 and int(page.headers["Retry-After"]) > 0
    assert shown_value(page.text, "message") == "Photo of the pothole"
    assert server.store.backlog() == (0, None)  # nothing taken, nothing to publish
