"""Downloads against a real HTTP server on 127.0.0.1: caching, limits and failures.

After every failure the cache must hold no file at all: neither a partial one nor a
bad one that a later build could take for a finished download.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time

import pytest
from httpserver import LocalServer, Route, refused_url

from voxspec.download import (
    DownloadLimits,
    cache_name,
    cached_download,
)
from voxspec.errors import UserError
from voxspec.sources import cache_dir

BODY = bytes(range(256)) * 400  # 100 KiB, several chunks
BODY_SHA = hashlib.sha256(BODY).hexdigest()
FAST = DownloadLimits(connect_timeout=0.5, read_timeout=0.4, progress_delay=0)


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("VOXSPEC_CACHE", str(folder))
    return folder


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def fetch(server, path, cache, **kwargs):
    kwargs.setdefault("limits", FAST)
    return cached_download(server.url(path), cache / "downloads", **kwargs)


def failure(server, path, cache, **kwargs) -> str:
    with pytest.raises(UserError) as caught:
        fetch(server, path, cache, **kwargs)
    assert files_in(cache) == [], "a failed download left a file in the cache"
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------- success


def test_downloads_once_then_reuses_the_cached_file(server, cache):
    server.routes["/data/volume.nii.gz"] = Route(BODY)
    first, digest = fetch(server, "/data/volume.nii.gz", cache)
    assert first.read_bytes() == BODY and digest == BODY_SHA
    assert first.name.endswith("-volume.nii.gz")  # nibabel needs the extension
    second, again = fetch(server, "/data/volume.nii.gz", cache)
    assert (second, again) == (first, digest)
    assert server.hits["/data/volume.nii.gz"] == 1
    assert files_in(cache) == [first.name]


def test_pinned_download_is_kept_and_reused(server, cache):
    server.routes["/v.nii"] = Route(BODY)
    fetch(server, "/v.nii", cache, expected_sha256=BODY_SHA)
    fetch(server, "/v.nii", cache, expected_sha256=BODY_SHA)
    assert server.hits["/v.nii"] == 1


def test_body_without_content_length_is_accepted(server, cache):
    server.routes["/v.nii"] = Route(BODY, send_length=False)
    path, digest = fetch(server, "/v.nii", cache)
    assert path.read_bytes() == BODY and digest == BODY_SHA


def test_cache_dir_honours_voxspec_cache(cache):
    assert cache_dir() == cache


def test_cache_names_differ_per_url_and_keep_the_file_name():
    a, b = cache_name("http://x/a/brain.nii.gz"), cache_name("http://y/a/brain.nii.gz")
    assert a != b and a.endswith("-brain.nii.gz") and b.endswith("-brain.nii.gz")
    assert cache_name("http://x/").endswith("-download")
    assert "/" not in cache_name("http://x/a%2F..%2Fb.nii?x=1")


# ------------------------------------------------------------------------- failures


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_names_status_and_url(server, cache, status):
    server.routes["/v.nii"] = Route(b"oops", status=status)
    message = failure(server, "/v.nii", cache)
    assert f"HTTP {status}" in message and server.url("/v.nii") in message


def test_refused_connection(cache):
    url = refused_url()
    with pytest.raises(UserError, match="Connection refused") as caught:
        cached_download(url, cache / "downloads", limits=FAST)
    assert url in str(caught.value)
    assert files_in(cache) == []


def test_server_that_never_answers_times_out(server, cache):
    server.routes["/v.nii"] = Route(BODY, stall_before_headers=5)
    started = time.monotonic()
    message = failure(server, "/v.nii", cache)
    assert "read timeout" in message and "0.4 s" in message
    assert time.monotonic() - started < 3


def test_server_that_stalls_mid_body_times_out(server, cache):
    server.routes["/v.nii"] = Route(BODY, stall_after=16384, stall_seconds=5)
    started = time.monotonic()
    message = failure(server, "/v.nii", cache)
    assert "read timeout" in message
    assert time.monotonic() - started < 3


def test_connect_timeout(cache):
    # A listening socket whose accept queue is full drops new connection attempts, so
    # they hang until the connect timeout (Linux); nothing leaves the machine.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/v.nii"
            limits = DownloadLimits(connect_timeout=0.3, read_timeout=0.3)
            with pytest.raises(UserError) as caught:
                cached_download(url, cache / "downloads", limits=limits)
        finally:
            for filler in fillers:
                filler.close()
    assert f"timed out after 0.3 s connecting to {url}" in str(caught.value)
    assert files_in(cache) == []


def test_body_shorter_than_announced(server, cache):
    server.routes["/v.nii"] = Route(BODY[:5000], announce=len(BODY))
    message = failure(server, "/v.nii", cache)
    assert "broke off after 5000 bytes" in message and str(len(BODY)) in message


def test_announced_size_over_the_limit_is_refused_before_reading(server, cache):
    server.routes["/big.nii"] = Route(BODY)
    limits = DownloadLimits(max_bytes=10_000)
    message = failure(server, "/big.nii", cache, limits=limits)
    assert "is 100.0 KiB, more than the 9.8 KiB download limit" in message


def test_stream_over_the_limit_is_cut(server, cache):
    server.routes["/big.nii"] = Route(BODY, send_length=False)
    message = failure(server, "/big.nii", cache, limits=DownloadLimits(max_bytes=10_000))
    assert "sends more than the 9.8 KiB download limit" in message


def test_hash_mismatch_shows_both_hashes_and_keeps_nothing(server, cache):
    server.routes["/v.nii"] = Route(BODY)
    wrong = "0" * 64
    message = failure(server, "/v.nii", cache, expected_sha256=wrong)
    assert wrong in message and BODY_SHA in message
    failure(server, "/v.nii", cache, expected_sha256=wrong)
    assert server.hits["/v.nii"] == 2  # nothing bad was cached to be reused


def test_cached_copy_not_matching_a_pin_is_fetched_again(server, cache):
    server.routes["/v.nii"] = Route(b"old contents")
    stale, _ = fetch(server, "/v.nii", cache)
    server.routes["/v.nii"] = Route(BODY)  # the server fixed its file
    fresh, digest = fetch(server, "/v.nii", cache, expected_sha256=BODY_SHA)
    assert fresh == stale and fresh.read_bytes() == BODY and digest == BODY_SHA
    assert server.hits["/v.nii"] == 2


def test_stale_partial_files_are_removed(server, cache):
    folder = cache / "downloads"
    folder.mkdir(parents=True)
    old = folder / ".abc-v.nii.x1.part"
    young = folder / ".abc-v.nii.x2.part"  # maybe another process's download in flight
    old.write_bytes(b"x")
    young.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 24 * 3600,) * 2)
    server.routes["/v.nii"] = Route(BODY)
    fetch(server, "/v.nii", cache)
    assert not old.exists() and young.exists()


# ------------------------------------------------------------------------ progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_only_when_asked(server, cache, monkeypatch, progress):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    server.routes["/v.nii"] = Route(BODY)
    fetch(server, "/v.nii", cache, progress=progress)
    assert ("downloading" in terminal.getvalue()) is progress


def test_no_progress_bar_for_a_quick_download(server, cache, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    server.routes["/v.nii"] = Route(BODY)
    fetch(server, "/v.nii", cache, limits=DownloadLimits(progress_delay=5))
    assert terminal.getvalue() == ""
