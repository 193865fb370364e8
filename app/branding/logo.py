"""Logo uploads: PNG or JPEG only (by content, not by name or declared type), size-limited, re-encoded.

Re-encoding with Pillow keeps only pixels: EXIF/XMP/ICC metadata, text chunks, trailing data and anything else
a file may carry are dropped. SVG is refused outright (it is a document that can hold script), as is every
other format, however it is named.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 1024 * 1024  # what we accept; the stored, re-encoded file is smaller still
MAX_SOURCE_PIXELS = 40_000_000  # refuse decompression bombs before decoding
MAX_WIDTH, MAX_HEIGHT = 1200, 600  # a logo never needs more; larger uploads are scaled down
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}


class LogoError(ValueError):
    """An upload we refuse; the message is shown beside the logo field."""


@dataclass(frozen=True)
class Logo:
    data: bytes
    mime: str
    sha256: str
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """'PNG' or 'JPEG' from the file's first bytes, else None."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    return None


def process_logo(data: bytes) -> Logo:
    """Check and re-encode an uploaded logo; raises LogoError with a message fit for the form."""
    if not data:
        raise LogoError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LogoError(f"The logo must be at most {MAX_UPLOAD_BYTES // 1024} KB.")
    kind = sniff(data)
    if kind is None:
        head = data[:512].lstrip().lower()
        if head.startswith((b"<?xml", b"<svg")) or b"<svg" in head:
            raise LogoError("SVG logos are not accepted (they can carry scripts). Upload a PNG or JPEG.")
        raise LogoError("Upload a PNG or JPEG image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as img:
                if img.width * img.height > MAX_SOURCE_PIXELS:
                    raise LogoError("That image has too many pixels for a logo.")
                img.load()
                clean = _pixels_only(img, kind)
    except LogoError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise LogoError("That file is not a readable PNG or JPEG image.") from exc
    clean.thumbnail((MAX_WIDTH, MAX_HEIGHT), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if kind == "PNG":
        clean.save(out, format="PNG", optimize=True)
    else:
        clean.save(out, format="JPEG", quality=90, optimize=True)
    encoded = out.getvalue()
    return Logo(encoded, MIME[kind], hashlib.sha256(encoded).hexdigest(), clean.width, clean.height)


def _pixels_only(img: Image.Image, kind: str) -> Image.Image:
    """A new image holding only the pixels (no info dict, no profile), in a mode the format stores plainly."""
    if kind == "JPEG":
        mode = "L" if img.mode in ("L", "1") else "RGB"
    else:
        has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
        mode = "RGBA" if has_alpha else ("L" if img.mode in ("L", "1") else "RGB")
    converted = img.convert(mode)
    fresh = Image.new(mode, converted.size)
    fresh.paste(converted)
    return fresh


def logo_hash(data: bytes | None) -> str | None:
    """What the audit log records for a logo: its SHA-256, never the bytes."""
    return hashlib.sha256(data).hexdigest() if data else None
