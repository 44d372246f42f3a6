"""Images from the notebook: a ``{name}`` that holds an image becomes an image part.

What counts as an image: a PIL image; a matplotlib ``Figure`` (or ``matplotlib.pyplot``, for
its current figure); a NumPy array of shape H×W×3 or H×W×4 (or H×W of ``uint8``, a grey
image: a 2-D array of other numbers is data, not a picture); bytes of a PNG, JPEG, GIF or
WebP; a ``pathlib.Path`` or a path string to such a file; an ``IPython.display.Image``.

Each is made ready with Pillow: EXIF orientation honoured, scaled down to fit the longest side
and the size a model takes (one notice says so), re-encoded only when it must be; a picture is
then a data URL in an OpenAI content part, the shape today's models and every engine take.
Cassettes, the batch store and output metadata name a picture by its digest and size, never
its bytes. The digest is of the pixels, not of the file: the same plot saved by another
version of an encoder is the same image, so a cassette still replays it.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

MAX_SIDE = 2048                  # pixels, the longest side sent
MAX_BYTES = 4 * 1024 * 1024      # encoded
THUMB_SIDE = 96                  # what a cell shows of each image it sent
MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
         (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))
SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".gif": "image/gif", ".webp": "image/webp"}
_DATA_URL = re.compile(r"data:(image/[a-z+.-]+);base64,")


def pixels_digest(image) -> str:
    """sha256 of an image's size and RGBA pixels."""
    rgba = image.convert("RGBA")
    return hashlib.sha256(b"%dx%d:" % rgba.size + rgba.tobytes()).hexdigest()


@dataclass(frozen=True)
class Picture:
    """An image ready to send: its bytes, type, size, pixels' digest, and whether it was
    scaled."""
    data: bytes
    mime: str
    width: int
    height: int
    digest: str
    scaled_from: tuple[int, int] | None = None

    def url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"

    def part(self) -> dict:
        return {"type": "image_url", "image_url": {"url": self.url()}}

    def label(self) -> str:
        return f"image {self.width}×{self.height}, {_kb(len(self.data))}"

    def about(self) -> dict:
        """What a saved notebook keeps of it: size and digest, never the pixels."""
        return {"width": self.width, "height": self.height, "bytes": len(self.data),
                "sha256": self.digest}

    def thumbnail_html(self) -> str:
        """A small copy as our own <img> (made here from the image, not from outside)."""
        image = _open(self.data)
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        small = _encode(image.convert("RGBA") if image.mode not in ("RGB", "RGBA")
                        else image, "image/png")
        return (f'<img class="cfai-thumb" src="data:image/png;base64,'
                f'{base64.b64encode(small).decode()}" alt="{self.label()}" '
                f'title="{self.label()}" style="max-height:{THUMB_SIDE}px;margin:2px">')


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} kB" if n >= 1024 else f"{n} B"


def picture_of(value) -> Picture | None:
    """The picture ``value`` holds, or None if it is not an image. Only types that look like
    images are opened, so ordinary values cost a few attribute checks."""
    raw = _raw(value)
    return None if raw is None else prepare(*raw)


def _raw(value):
    """(bytes or a PIL image, the mime type if known) for what looks like an image."""
    kind = type(value)
    module = kind.__module__ or ""
    if module.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "size"):
        return value, None
    if getattr(value, "__name__", "") == "matplotlib.pyplot":
        value, kind, module = value.gcf(), None, "matplotlib"
    if module.startswith("matplotlib") and hasattr(value, "savefig"):
        out = io.BytesIO()
        value.savefig(out, format="png", dpi=100, bbox_inches="tight")
        return out.getvalue(), "image/png"
    if module == "numpy" and getattr(value, "ndim", 0) in (2, 3):
        shape, dtype = value.shape, str(value.dtype)
        if (value.ndim == 3 and shape[-1] in (3, 4)) or (value.ndim == 2 and dtype == "uint8"):
            return _from_array(value), None
        return None
    if module.startswith("IPython.") and kind.__name__ == "Image" and \
            isinstance(getattr(value, "data", None), bytes):
        return value.data, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        mime = sniff(data)
        return (data, mime) if mime else None
    if isinstance(value, (str, Path)):
        return _file(value)
    return None


def sniff(data: bytes) -> str | None:
    """The image type of these bytes, by their first bytes."""
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _file(value):
    text = str(value)
    if len(text) > 4096 or "\n" in text:
        return None
    path = Path(text).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        return None
    try:
        if not path.is_file():
            return None
        return path.read_bytes(), None
    except OSError:
        return None


def _from_array(array):
    from PIL import Image
    import numpy as np
    if array.dtype != np.uint8:                   # floats in [0, 1], or other integers
        scale = 255.0 if float(array.max(initial=0)) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _open(data: bytes):
    from PIL import Image
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _encode(image, mime: str, quality: int = 90) -> bytes:
    out = io.BytesIO()
    if mime == "image/jpeg":
        image.convert("RGB").save(out, format="JPEG", quality=quality, optimize=True)
    else:
        image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def prepare(source, mime: str | None = None, max_side: int = MAX_SIDE,
            max_bytes: int = MAX_BYTES) -> Picture:
    """A picture within ``max_side`` and ``max_bytes``: bytes kept as they are when they may
    be, else decoded (EXIF orientation honoured), scaled and re-encoded."""
    from PIL import ImageOps
    data = source if isinstance(source, bytes) else None
    image = _open(data) if data is not None else source
    mime = mime or (sniff(data) if data is not None else None)
    turned = ImageOps.exif_transpose(image)
    size = turned.size
    fits = max(size) <= max_side
    if data is not None and mime is not None and fits and len(data) <= max_bytes \
            and _unrotated(image):
        return Picture(data, mime, *size, pixels_digest(turned))   # sent as it came
    photo = mime == "image/jpeg" or (mime is None and turned.mode == "RGB"
                                     and _is_photo(turned))
    out_mime = "image/jpeg" if photo else "image/png"
    if not fits:
        turned = turned.copy()
        turned.thumbnail((max_side, max_side))
    encoded = _encode(turned, out_mime)
    quality = 85
    while len(encoded) > max_bytes:             # still too large: JPEG, smaller each time
        out_mime = "image/jpeg"
        if quality > 60:
            quality -= 10
        else:
            turned = turned.resize((max(1, turned.width * 3 // 4),
                                    max(1, turned.height * 3 // 4)))
        encoded = _encode(turned, out_mime, quality)
    return Picture(encoded, out_mime, *turned.size, pixels_digest(_open(encoded)),
                   scaled_from=size if turned.size != size else None)


def _unrotated(image) -> bool:
    try:
        return image.getexif().get(0x0112, 1) == 1
    except Exception:
        return True


def _is_photo(image) -> bool:
    """Many colours: a photo (JPEG keeps it small); few: a plot or a drawing (PNG)."""
    small = image.copy()
    small.thumbnail((64, 64))
    return small.getcolors(maxcolors=1024) is None


def of_part(part) -> Picture | None:
    """The picture in an image part (from our own data URL), for showing and digests."""
    url = ((part.get("image_url") or {}).get("url") or "") if isinstance(part, dict) else ""
    found = _DATA_URL.match(url)
    if not found:
        return None
    try:
        data = base64.b64decode(url[found.end():], validate=False)
        image = _open(data)
    except Exception:
        return None
    width, height = image.size
    return Picture(data, found.group(1), width, height, pixels_digest(image))


def digested(obj):
    """``obj`` with every image data URL replaced by its digest and size (what a cassette,
    the batch store and a request's key keep)."""
    if isinstance(obj, dict):
        if obj.get("type") == "image_url":
            pic = of_part(obj)
            if pic is not None:
                return {"type": "image_url", "image_url": {
                    "url": f"sha256:{pic.digest}", "width": pic.width, "height": pic.height,
                    "bytes": len(pic.data)}}
        return {k: digested(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [digested(v) for v in obj]
    return obj


def pictures_in(messages) -> list[Picture]:
    """The pictures of a list of messages, in order."""
    found = []
    for m in messages or ():
        content = m.get("content") if isinstance(m, dict) else None
        for part in content if isinstance(content, list) else ():
            pic = of_part(part) if isinstance(part, dict) and \
                part.get("type") == "image_url" else None
            if pic is not None:
                found.append(pic)
    return found
