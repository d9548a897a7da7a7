"""Turn image-like notebook objects into ``image_url`` content parts.

Kimi accepts images only as base64 data URLs (png, jpeg, webp, gif) and recommends at most
4096x2160 pixels. This module accepts whatever a data scientist has at hand (a matplotlib
Figure or Axes, a PIL Image, a numpy array, encoded bytes, a file path, an IPython ``Image``),
downscales it with Pillow to fit the box, sends already-valid files byte-for-byte, and turns
every failure (corrupt data, missing file, decompression bomb) into a :class:`ContextError`.
Pillow is imported lazily; numpy and matplotlib are only used when the object came from them.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ._detect import as_figure, is_ipython_image, is_numpy_array, is_pil_image
from ._image_arrays import array_to_pil, looks_like_image
from ._repr import type_name
from .errors import ContextError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIZE",
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "encode_image",
    "image_part",
    "image_part_with_info",
    "is_image_like",
    "sniff_image_format",
]

DEFAULT_MAX_SIZE: tuple[int, int] = (4096, 2160)
#: Largest image (in decoded pixels) we are willing to hold in memory while converting.
#: JPEGs above it are decoded at a reduced scale instead; other formats are refused.
DEFAULT_MAX_PIXELS = 80_000_000
#: Image files bigger than this on disk are refused before being read.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Pillow first shrinks by an integer factor (box filter) while the remaining ratio stays
#: above this, then finishes with LANCZOS: ~2x faster than pure LANCZOS, visually the same.
_REDUCING_GAP = 1.5
#: A re-encoded PNG without transparency that would exceed this is sent as JPEG instead.
PNG_SOFT_LIMIT = 10 * 1024 * 1024

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
# Modes Kimi's decoders read correctly when we pass the original bytes through untouched.
_PASSTHROUGH_MODES = {
    "PNG": {"1", "L", "LA", "P", "PA", "RGB", "RGBA"},
    "JPEG": {"L", "RGB"},
}


@dataclass(frozen=True)
class ImageInfo:
    """What was sent: MIME type, final and original pixel size, encoded byte count."""

    mime: str
    width: int
    height: int
    bytes: int
    original_width: int
    original_height: int

    @property
    def format(self) -> str:
        """Short format name, e.g. ``png``."""
        return self.mime.split("/", 1)[-1]

    @property
    def resized(self) -> bool:
        return (self.width, self.height) != (self.original_width, self.original_height)

    def label(self) -> str:
        """Compact text for history views, e.g. ``[image 640x480 png]``."""
        return f"[image {self.width}x{self.height} {self.format}]"


def sniff_image_format(data: bytes | bytearray | memoryview) -> str | None:
    """Pillow format name of encoded image bytes judged by magic bytes, else None."""
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_part(
    obj: Any,
    *,
    max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """An ``{"type": "image_url", ...}`` content part for ``obj`` (see module docstring)."""
    return image_part_with_info(obj, max_size=max_size, max_pixels=max_pixels)[0]


def image_part_with_info(
    obj: Any,
    *,
    max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    source: str | None = None,
) -> tuple[dict[str, Any], ImageInfo]:
    """Like :func:`image_part`, also returning the :class:`ImageInfo` of what was sent.

    ``source`` names the object in error messages (default: derived from the object).
    """
    data, info = encode_image(obj, max_size=max_size, max_pixels=max_pixels, source=source)
    part = {"type": "image_url", "image_url": {"url": data_url(info.mime, data)}}
    return part, info


def encode_image(
    obj: Any,
    *,
    max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    source: str | None = None,
) -> tuple[bytes, ImageInfo]:
    """Encoded image bytes (png/jpeg/gif/webp) fitting ``max_size``, and their info."""
    box = _check_box(max_size)
    src = source or _describe(obj)
    try:
        return _encode(obj, box, max_pixels, src)
    except ContextError:
        raise
    except MemoryError:
        raise ContextError(
            f"{src} is too large to convert in memory; downscale it before attaching it"
        ) from None


def is_image_like(obj: Any) -> bool:
    """Cheap test used by ``{name}`` interpolation: would this value be sent as an image?

    Figures/Axes, PIL and IPython images, encoded image bytes, and numpy arrays that look
    like pictures: uint8/uint16/bool with shape (h, w), (h, w, 1|3|4) and both sides >= 8, or
    float (h, w, 3|4) with all values in [0, 1]. Paths are handled by the caller.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        try:
            return sniff_image_format(obj) is not None
        except Exception:
            return False
    if is_pil_image(obj) or is_ipython_image(obj):
        return True
    if is_numpy_array(obj) and obj.dtype != object:
        return looks_like_image(obj)
    return as_figure(obj) is not None


# ---------------------------------------------------------------------------------------
# dispatch


def _describe(obj: Any) -> str:
    if isinstance(obj, (str, PurePath)):
        return f"image file '{obj}'"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return "the image data"
    return f"the {type_name(obj)}"


def _check_box(max_size: tuple[int, int]) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in max_size)
    except Exception:
        raise ContextError(f"max_size must be two positive integers, got {max_size!r}") from None
    if a < 1 or b < 1:
        raise ContextError(f"max_size must be two positive integers, got {max_size!r}")
    return (max(a, b), min(a, b))


def _encode(obj: Any, box: tuple[int, int], max_pixels: int, src: str) -> tuple[bytes, ImageInfo]:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(obj), box, max_pixels, src)
    if isinstance(obj, str) and obj.startswith("data:"):
        return _from_bytes(_decode_data_url(obj, src), box, max_pixels, src)
    if isinstance(obj, str) and obj.startswith(("http://", "https://")):
        raise ContextError(
            f"{src}: Kimi accepts images only as embedded data, not web links; "
            "download the image and pass its file path or bytes instead"
        )
    if isinstance(obj, (str, os.PathLike)):
        return _from_path(obj, box, max_pixels, src)
    if is_pil_image(obj):
        return _from_pil(obj, box, src)
    if is_ipython_image(obj):
        return _from_ipython_image(obj, box, max_pixels, src)
    fig = as_figure(obj)
    if fig is not None:
        return _from_figure(fig, box, max_pixels, src)
    if is_numpy_array(obj):
        return _from_array(obj, box, src)
    raise ContextError(
        f"{src} is not an image; pass a matplotlib Figure, a PIL Image, a numpy array, "
        "encoded image bytes or an image file path"
    )


def _decode_data_url(url: str, src: str) -> bytes:
    head, _, payload = url.partition(",")
    if ";base64" not in head:
        raise ContextError(f"{src}: only base64 data URLs are supported")
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ContextError(f"{src}: the data URL is not valid base64 ({exc})") from None


def _from_path(
    path: str | os.PathLike[str], box: tuple[int, int], max_pixels: int, src: str
) -> tuple[bytes, ImageInfo]:
    p = Path(os.fspath(path)).expanduser()
    try:
        if not p.exists():
            raise ContextError(f"{src} not found; check the path (working directory: {Path.cwd()})")
        if not p.is_file():
            raise ContextError(f"{src} is not a file")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ContextError(f"{src} is {size / 2**20:.0f} MB, too large to attach; save a smaller copy")
        data = p.read_bytes()
    except OSError as exc:
        raise ContextError(f"{src} could not be read: {exc.strerror or exc}") from None
    return _from_bytes(data, box, max_pixels, src)


def _from_ipython_image(obj: Any, box: tuple[int, int], max_pixels: int, src: str) -> tuple[bytes, ImageInfo]:
    data = getattr(obj, "data", None)
    if isinstance(data, str):
        try:
            data = base64.b64decode(data)
        except (binascii.Error, ValueError):
            data = None
    if isinstance(data, (bytes, bytearray)) and data:
        return _from_bytes(bytes(data), box, max_pixels, src)
    filename = getattr(obj, "filename", None)
    if filename:
        return _from_path(filename, box, max_pixels, f"image file '{filename}'")
    url = getattr(obj, "url", None)
    if url:
        raise ContextError(
            f"{src} refers to the web link {url!r}; Kimi accepts embedded images only, "
            "so create it with Image(url=..., embed=True) or download the file"
        )
    raise ContextError(f"{src} has no image data")


def _from_figure(fig: Any, box: tuple[int, int], max_pixels: int, src: str) -> tuple[bytes, ImageInfo]:
    from .plots import displayed_png

    shown = displayed_png(fig)
    if shown is not None:
        # What the notebook displayed for this unchanged figure: no second render.
        return _from_bytes(shown, box, max_pixels, src, trusted=True)
    dpi = float(fig.dpi or 100)
    try:
        w_in, h_in = (float(v) for v in fig.get_size_inches())
    except Exception:
        w_in = h_in = 0.0
    if w_in > 0 and h_in > 0:
        # Render no bigger than needed: a 100-inch figure at 300 dpi would allocate gigabytes.
        w_px, h_px = w_in * dpi, h_in * dpi
        scale = _scale_to_fit(w_px, h_px, box)
        if scale < 1:
            dpi = max(1.0, math.floor(dpi * scale))
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    except Exception as exc:
        raise ContextError(f"{src} could not be rendered to PNG: {exc}") from None
    return _from_bytes(buf.getvalue(), box, max_pixels, src, trusted=True)


# ---------------------------------------------------------------------------------------
# geometry


def _scale_to_fit(w: float, h: float, box: tuple[int, int]) -> float:
    long_max, short_max = box
    long_side, short_side = max(w, h), min(w, h)
    if long_side <= 0:
        return 1.0
    return min(1.0, long_max / long_side, short_max / max(short_side, 1e-9))


def fit_size(size: tuple[int, int], max_size: tuple[int, int] = DEFAULT_MAX_SIZE) -> tuple[int, int]:
    """The size ``size`` scales down to so that it fits ``max_size`` in either orientation."""
    box = (max(max_size), min(max_size))
    w, h = size
    scale = _scale_to_fit(w, h, box)
    if scale >= 1:
        return (w, h)
    long_max, short_max = box
    w_lim, h_lim = (long_max, short_max) if w >= h else (short_max, long_max)
    return (max(1, min(round(w * scale), w_lim)), max(1, min(round(h * scale), h_lim)))


# ---------------------------------------------------------------------------------------
# encoded bytes


def _open(data: bytes, fmt: str) -> Any:
    from PIL import Image

    if fmt == "JPEG":
        # Opening the plugin directly skips Pillow's global bomb check, which would refuse a
        # huge JPEG before we can ask for a reduced-scale decode; we enforce our own limit.
        from PIL import JpegImagePlugin

        return JpegImagePlugin.JpegImageFile(io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=[fmt])


def _too_big(src: str, w: int, h: int, max_pixels: int) -> str:
    return (
        f"{src} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), more than the "
        f"{max_pixels / 1e6:.0f}-megapixel limit for safe decoding; save a smaller copy "
        "(or a JPEG, which can be decoded at reduced scale) and attach that"
    )


def _orientation(img: Any) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _from_bytes(
    data: bytes, box: tuple[int, int], max_pixels: int, src: str, trusted: bool = False
) -> tuple[bytes, ImageInfo]:
    """``trusted``: matplotlib made these bytes in this process, so a PNG that fits is sent
    without checking it; other PNGs that fit are checked chunk by chunk (CRCs, no pixel
    decode), other formats are decoded once."""
    from PIL import Image

    fmt = sniff_image_format(data)
    if fmt is None:
        raise ContextError(
            f"{src} is not a PNG, JPEG, GIF or WEBP image (the data starts with {data[:8]!r}); "
            "check that the file or bytes hold an encoded image"
        )
    try:
        img = _open(data, fmt)
        w, h = img.size
        # Pillow's PNG getexif() decodes every pixel to look for an eXIf chunk after the image
        # data; one before it is already in img.info, and one after is rare enough to ignore.
        orientation = 1 if fmt == "PNG" and "exif" not in img.info else _orientation(img)
        if orientation >= 5:
            w, h = h, w
        target = fit_size((w, h), box)
        drafted = False
        if w * h > max_pixels and fmt == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale, still at least the target size.
            img.draft(img.mode, target if orientation < 5 else target[::-1])
            drafted = True
        if img.width * img.height > max_pixels:
            raise ContextError(_too_big(src, w, h, max_pixels))
        if (
            fmt in _MIME
            and not drafted
            and target == (w, h)
            and orientation == 1
            and img.mode in _PASSTHROUGH_MODES.get(fmt, {img.mode})
        ):
            if fmt == "PNG":
                if not trusted:
                    _open(data, fmt).verify()  # a truncated or corrupt file must fail here, not at Kimi
            else:
                img.load()  # validate by decoding (JPEG, GIF, WEBP have no chunk checksums)
            return data, ImageInfo(_MIME[fmt], w, h, len(data), w, h)
        img.load()
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if orientation != 1:
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
    except ContextError:
        raise
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" ({int(found.group(1)) / 1e6:.0f} megapixels)" if found else ""
        raise ContextError(
            f"{src} is too large to decode safely{size}; save a smaller copy and attach that"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise ContextError(
            f"{src} could not be read as a {fmt} image ({exc}); the data may be corrupt or truncated"
        ) from None
    out_fmt = "JPEG" if fmt == "JPEG" else "PNG"
    return _finish(img, target, out_fmt, (w, h))


# ---------------------------------------------------------------------------------------
# decoded images


def _to_8bit(img: Any) -> Any:
    """Convert any Pillow mode to L, RGB or RGBA, scaling 16-bit and float data sensibly."""
    mode = img.mode
    if mode in ("L", "RGB", "RGBA"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("LA", "La", "PA", "RGBa"):
        return img.convert("RGBA")
    if mode == "P":
        has_alpha = "transparency" in img.info
        return img.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        if mode.startswith("I;16"):
            img = img.convert("I")
        lo, hi = img.getextrema()
        if mode == "F" and lo >= 0 and hi <= 1:
            scale, offset = 255.0, 0.0
        elif lo >= 0 and hi <= 255:
            scale, offset = 1.0, 0.0
        elif lo >= 0 and hi <= 65535:
            scale, offset = 255.0 / 65535.0, 0.0
        else:
            span = (hi - lo) or 1
            scale, offset = 255.0 / span, -lo * 255.0 / span
        if mode != "F":
            img = img.convert("F")
        return img.point(lambda v: v * scale + offset).convert("L")
    return img.convert("RGB")


def _has_alpha(img: Any) -> bool:
    if img.mode != "RGBA":
        return False
    lo, _hi = img.getchannel("A").getextrema()
    return lo < 255


def _finish(
    img: Any, target: tuple[int, int], out_fmt: str, original: tuple[int, int]
) -> tuple[bytes, ImageInfo]:
    from PIL import Image

    if img.size != target and img.mode not in ("1", "P"):
        # Shrink in the original mode first (cheaper for big images), then normalise.
        try:
            img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
        except (ValueError, OSError):
            img = _to_8bit(img).resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    img = _to_8bit(img)
    if img.size != target:
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    if out_fmt == "JPEG" and img.mode == "RGBA":
        out_fmt = "PNG"
    buf = io.BytesIO()
    if out_fmt == "JPEG":
        img.save(buf, "JPEG", quality=90)
    else:
        img.save(buf, "PNG")
        if buf.tell() > PNG_SOFT_LIMIT and not _has_alpha(img):
            buf = io.BytesIO()
            img.convert("RGB" if img.mode == "RGBA" else img.mode).save(buf, "JPEG", quality=90)
            out_fmt = "JPEG"
    data = buf.getvalue()
    w, h = img.size
    return data, ImageInfo(_MIME[out_fmt], w, h, len(data), original[0], original[1])


def _from_pil(img: Any, box: tuple[int, int], src: str) -> tuple[bytes, ImageInfo]:
    try:
        img.load()
        w, h = img.size
        if w < 1 or h < 1:
            raise ContextError(f"{src} is empty ({w}x{h} pixels)")
        out_fmt = "JPEG" if getattr(img, "format", None) == "JPEG" else "PNG"
        return _finish(img, fit_size((w, h), box), out_fmt, (w, h))
    except ContextError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise ContextError(f"{src} could not be converted to an image ({exc})") from None


def _from_array(arr: Any, box: tuple[int, int], src: str) -> tuple[bytes, ImageInfo]:
    img, original, target = array_to_pil(arr, lambda size: fit_size(size, box), src)
    return _finish(img, target, "PNG", original)
