"""Fetch a URL into the cache once, safely, and reuse it afterwards.

A download streams into a hidden temporary file in the cache folder and is renamed
into place (``os.replace``, atomic) only once it is complete, within the size limit
and, when pinned, of the expected SHA-256. So an interrupted or bad download never
leaves a file that looks like a finished one. Every failure the user can do something
about (HTTP status, refused connection, timeout, truncated body, full disk) becomes a
one-line :class:`~voxspec.errors.UserError`.

requests, tqdm and hashlib do the work; this module only adds the cache policy and
the limits. (pooch was considered: it offers the atomic move and the hash check, but
neither a size limit nor readable errors, so its downloader would have to be replaced
by one like the one below, leaving it little to do.)
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
import urllib3
from tqdm import tqdm

from voxspec.errors import UserError

GiB = 1024**3
CHUNK_BYTES = 256 * 1024
PARTIAL_SUFFIX = ".part"
STALE_PARTIAL_SECONDS = 24 * 3600  # older partial files are leftovers of killed processes


@dataclass(frozen=True)
class DownloadLimits:
    """How long to wait and how much to accept from a server."""

    max_bytes: int = 2 * GiB
    connect_timeout: float = 10.0  # seconds to establish the connection
    read_timeout: float = 60.0  # seconds without receiving a byte
    progress_delay: float = 1.0  # seconds before a progress bar appears at all


DEFAULT_DOWNLOAD_LIMITS = DownloadLimits()


def human_size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def reason(exc: BaseException) -> str:
    """A library's error message on one line (some, like nibabel's, span several)."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:  # without errno's "[Errno 2]" noise
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return " ".join(text.split()) or type(exc).__name__


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def hash_mismatch(what: str, expected: str, actual: str) -> UserError:
    return UserError(f"SHA-256 mismatch for {what}: expected {expected}, got {actual}")


def cache_name(url: str) -> str:
    """A file name unique to ``url`` that keeps its base name, so the format stays visible.

    nibabel tells formats apart by extension (``.nii.gz``, ``.mgz``, ...), so the name
    must end like the URL's path does.
    """
    try:
        base = unquote(urlparse(url).path).rstrip("/").rsplit("/", 1)[-1]
    except ValueError:  # a malformed URL: requests will say what is wrong with it
        base = ""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-100:] or "download"
    return f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{base}"


def cached_download(
    url: str,
    folder: Path,
    *,
    expected_sha256: str | None = None,
    limits: DownloadLimits = DEFAULT_DOWNLOAD_LIMITS,
    progress: bool = True,
) -> tuple[Path, str]:
    """Return the local copy of ``url`` in ``folder`` and its SHA-256, downloading if needed."""
    target = folder / cache_name(url)
    if target.is_file():
        actual = sha256_of_file(target)
        if expected_sha256 is None or actual == expected_sha256:
            return target, actual
        # The cached copy does not match the pin: the server may have fixed the file
        # since, so drop the copy and fetch again; a bad copy is never kept.
        target.unlink(missing_ok=True)
    actual = _download_atomically(url, target, expected_sha256, limits, progress)
    return target, actual


def _download_atomically(
    url: str, target: Path, expected: str | None, limits: DownloadLimits, progress: bool
) -> str:
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(folder)
        fd, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX
        )
    except OSError as exc:
        raise UserError(
            f"cannot write into the cache folder {folder}: {reason(exc)}; "
            "set VOXSPEC_CACHE to a writable folder"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_into(url, out, target.name, limits, progress)
            out.flush()
            os.fsync(out.fileno())  # the rename must never publish unwritten data
        if expected is not None and actual != expected:
            raise hash_mismatch(url, expected, actual)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise UserError(f"cannot save the download of {url} in {folder}: {reason(exc)}") from None
    except BaseException:  # also Ctrl-C: never leave the partial file behind
        Path(temporary).unlink(missing_ok=True)
        raise
    return actual


def _remove_stale_partials(folder: Path) -> None:
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    for partial in folder.glob(f".*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):  # another process may be removing it too
            if partial.stat().st_mtime < cutoff:
                partial.unlink()


def _stream_into(url: str, out, name: str, limits: DownloadLimits, progress: bool) -> str:
    """Write the body of ``url`` to ``out`` within the limits; return its SHA-256."""
    digest = hashlib.sha256()
    received = 0
    declared = None
    try:
        with requests.get(
            url,
            stream=True,
            timeout=(limits.connect_timeout, limits.read_timeout),
            # The bytes on disk must be the file itself (its hash is pinned), never a
            # transfer encoding of it, and Content-Length must count those same bytes.
            headers={"Accept-Encoding": "identity"},
        ) as response:
            if response.status_code >= 400:
                raise UserError(f"HTTP {response.status_code} {response.reason} for {url}")
            declared = _declared_length(response)
            if declared is not None and declared > limits.max_bytes:
                raise _too_large(url, f"is {human_size(declared)}, more", limits.max_bytes)
            with tqdm(
                total=declared,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"downloading {name}",
                file=sys.stderr,
                delay=limits.progress_delay,
                disable=None if progress else True,  # None: only on a terminal
            ) as bar:
                for chunk in response.iter_content(CHUNK_BYTES):
                    received += len(chunk)
                    if received > limits.max_bytes:
                        raise _too_large(url, "sends more", limits.max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.exceptions.ConnectTimeout:
        raise UserError(
            f"timed out after {limits.connect_timeout:g} s connecting to {url}"
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout) as exc:
        if _is_read_timeout(exc):
            raise UserError(
                f"no data from {url} for {limits.read_timeout:g} s (read timeout)"
            ) from None
        raise UserError(f"cannot connect to {url}: {_root_reason(exc)}") from None
    except requests.exceptions.ChunkedEncodingError as exc:
        raise _truncated(url, received + _partial_bytes(exc), declared) from None
    except requests.exceptions.RequestException as exc:
        raise UserError(f"cannot download {url}: {_root_reason(exc)}") from None
    if declared is not None and received != declared:
        raise _truncated(url, received, declared)
    return digest.hexdigest()


def _declared_length(response: requests.Response) -> int | None:
    # With a content encoding, Content-Length counts the encoded bytes, not ours.
    if response.headers.get("Content-Encoding", "identity") != "identity":
        return None
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _partial_bytes(exc: BaseException) -> int:
    """Bytes of the chunk being read when the connection broke (lost with the chunk)."""
    for cause in _causes(exc):
        if isinstance(cause, (urllib3.exceptions.IncompleteRead, http.client.IncompleteRead)):
            partial = cause.partial
            return partial if isinstance(partial, int) else len(partial)
    return 0


def _too_large(url: str, what: str, limit: int) -> UserError:
    return UserError(f"{url} {what} than the {human_size(limit)} download limit")


def _truncated(url: str, received: int, declared: int | None) -> UserError:
    of = f" of the {declared} announced" if declared is not None else ""
    return UserError(
        f"download of {url} broke off after {received} bytes{of} (connection closed early)"
    )


def _causes(exc: BaseException):
    """``exc`` and every exception nested in it (causes, contexts, urllib3 reasons, args)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += [a for a in current.args if isinstance(a, BaseException)]
        stack.extend(n for n in nested if isinstance(n, BaseException))


def _is_read_timeout(exc: BaseException) -> bool:
    # requests reports a read timeout in the middle of the body as a plain ConnectionError
    # wrapping urllib3's ReadTimeoutError, and one before the headers as ReadTimeout.
    return any(
        isinstance(e, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError))
        for e in _causes(exc)
    )


def _root_reason(exc: BaseException) -> str:
    """The innermost readable reason, e.g. 'Connection refused' instead of urllib3's essay."""
    found = None
    for current in _causes(exc):
        if isinstance(current, OSError) and current.strerror:
            found = current.strerror
    return found or reason(exc)[:200]
