"""Provenance inside figure files: how it is written into each format and read back.

Every output carries the same canonical JSON (the resolved spec and the source
hashes), stored where each format keeps free text:

- PNG: a ``tEXt`` chunk named ``voxspec:provenance``;
- PDF: a ``/VoxspecProvenance`` entry of the document information dictionary;
- SVG: the ``<dc:description>`` of the file's ``<metadata>``;
- TIFF: the ``ImageDescription`` tag (270).

Writing and reading live side by side so that they cannot drift apart. This module
imports nothing heavy at load time: ``voxspec inspect`` must stay quick.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from voxspec.errors import Problem, UserError

PNG_KEY = "voxspec:provenance"
PDF_KEY = "VoxspecProvenance"
TIFF_DESCRIPTION_TAG = 270
FORMATS = ("png", "pdf", "svg", "tiff")
DC_NAMESPACE = "http://purl.org/dc/elements/1.1/"
# Large enough for the biggest figure a spec may ask for (model.MAX_PIXELS_PER_SIDE a
# side); Pillow's default refuses anything past ~180 Mpx as a "decompression bomb".
MAX_IMAGE_PIXELS = 20_000 * 20_000


def provenance_text(provenance: dict) -> str:
    """Canonical JSON (sorted keys, ASCII only): the same provenance gives the same bytes."""
    return json.dumps(provenance, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def save_options(fmt: str, provenance: dict) -> dict:
    """Keyword arguments for ``Figure.savefig`` that embed ``provenance`` and leave out
    everything that varies between runs (dates, the matplotlib version banner)."""
    text = provenance_text(provenance)
    creator = f"voxspec {provenance.get('voxspec', '')}".strip()
    if fmt == "png":
        return {"metadata": {"Software": creator, PNG_KEY: text}}
    if fmt == "pdf":
        # CreationDate/ModDate None: matplotlib would write the time (or SOURCE_DATE_EPOCH)
        return {
            "metadata": {
                "Creator": creator,
                "Producer": creator,
                "Title": provenance.get("name"),
                "CreationDate": None,
                "ModDate": None,
                PDF_KEY: text,
            }
        }
    if fmt == "svg":
        # Date None: matplotlib would write today's date (or SOURCE_DATE_EPOCH)
        return {"metadata": {"Creator": creator, "Date": None, "Description": text}}
    if fmt == "tiff":
        # Pillow writes no date or software tag unless asked to
        return {"pil_kwargs": {"compression": "tiff_deflate", "description": text}}
    raise ValueError(f"unknown format {fmt!r}")


# ---------------------------------------------------------------------- reading


def sniff_format(head: bytes) -> str | None:
    """The figure format of a file from its first bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"%PDF-"):
        return "pdf"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"<?xml", b"<svg", b"<!DOCTYPE svg")) and b"<svg" in head:
        return "svg"
    return None


def read_provenance(path: str | Path) -> dict:
    """The provenance a voxspec figure file carries. Raises ``UserError`` (one line) for
    a missing file, a format voxspec does not write, or a file without provenance."""
    path = Path(path)
    shown = str(path)

    def fail(message: str) -> UserError:
        return UserError(Problem(message, ("inspect",), shown))

    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a folder, not a figure file") from None
    except OSError as error:
        raise fail(f"cannot read the file: {error.strerror}") from None
    fmt = sniff_format(head)
    if fmt is None:
        raise fail(f"not a figure file voxspec writes ({', '.join(FORMATS)})")
    try:
        text = _READERS[fmt](path)
    except (OSError, ValueError, SyntaxError) as error:  # corrupt files, XML errors
        raise fail(f"unreadable {fmt.upper()} file ({error})") from None
    if text is None:
        raise fail(f"no voxspec provenance in this {fmt.upper()} file")
    try:
        provenance = json.loads(text)
    except ValueError:
        provenance = None
    if not isinstance(provenance, dict):
        raise fail(f"the voxspec provenance in this {fmt.upper()} file is not valid JSON")
    return provenance


def open_image(path: Path):
    """A Pillow image of a raster figure, allowing every size a spec can ask for."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_IMAGE_PIXELS)
    return Image.open(path)


def _read_png(path: Path) -> str | None:
    with open_image(path) as image:
        # voxspec's text chunks come before the pixels (``info``); ``text`` would also
        # decode the image to find chunks written after them
        return image.info.get(PNG_KEY) or image.text.get(PNG_KEY)


def _read_tiff(path: Path) -> str | None:
    with open_image(path) as image:
        value = image.tag_v2.get(TIFF_DESCRIPTION_TAG)
    return value if isinstance(value, str) else None


def _read_svg(path: Path) -> str | None:
    import xml.etree.ElementTree as ElementTree

    # iterparse stops at the metadata, near the top, instead of parsing every path
    for _, element in ElementTree.iterparse(path, events=("end",)):
        if element.tag == f"{{{DC_NAMESPACE}}}description":
            return element.text
    return None


_PDF_ENTRY = re.compile(rb"/" + PDF_KEY.encode() + rb"\s*\(")
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _read_pdf(path: Path) -> str | None:
    """The ``/VoxspecProvenance`` string of the information dictionary, which matplotlib
    writes uncompressed: found by its key, then read as a PDF literal string."""
    data = path.read_bytes()
    entries = list(_PDF_ENTRY.finditer(data))
    if not entries:
        return None
    # the last one wins, as in a PDF updated by appending
    raw = _pdf_literal_string(data, entries[-1].end())
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be")
    return raw.decode("latin-1")


def _pdf_literal_string(data: bytes, start: int) -> bytes:
    """The bytes of the literal string whose opening parenthesis ends at ``start``."""
    out, depth, i = bytearray(), 1, start
    while i < len(data):
        char = data[i : i + 1]
        if char == b"\\":
            following = data[i + 1 : i + 2]
            if following in _PDF_ESCAPES:
                out += _PDF_ESCAPES[following]
                i += 2
            elif following and following in b"01234567":  # \ddd, one to three octal digits
                digits = re.match(rb"[0-7]{1,3}", data[i + 1 : i + 4]).group()
                out.append(int(digits, 8) & 0xFF)
                i += 1 + len(digits)
            elif following in (b"\n", b"\r"):  # a line continuation (\r\n counts as one)
                i += 3 if data[i + 1 : i + 3] == b"\r\n" else 2
            else:
                out += following
                i += 2
            continue
        if char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            if depth == 0:
                return bytes(out)
        out += char
        i += 1
    raise ValueError("the provenance string is not closed")


_READERS = {"png": _read_png, "tiff": _read_tiff, "svg": _read_svg, "pdf": _read_pdf}
