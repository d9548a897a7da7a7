"""numpy arrays as pictures: recognising them and mapping any dtype onto 8-bit pixels.

Arrays reach prompts from OpenCV, imageio, scikit-image or model outputs, in uint8, uint16,
bool or float with any range, sometimes channels-first and sometimes far bigger than what
Kimi accepts. Kept apart from ``images.py`` because only numpy users need it; numpy is
imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ContextError

__all__ = ["array_to_pil", "looks_like_image"]


def looks_like_image(arr: Any) -> bool:
    """Shape/dtype heuristic for "this array is a picture" (see ``is_image_like``)."""
    try:
        shape = arr.shape
        kind = arr.dtype.kind
        if arr.ndim == 2:
            h, w = shape
            channels = 1
        elif arr.ndim == 3 and shape[2] in (1, 3, 4):
            h, w, channels = shape
        else:
            return False
        if min(h, w) < 8:
            return False
        if kind == "b" or arr.dtype.name in ("uint8", "uint16"):
            return True
        if kind == "f" and channels in (3, 4):
            sample = arr[:: max(1, h // 256), :: max(1, w // 256)]
            lo, hi = float(sample.min()), float(sample.max())
            return lo >= 0.0 and hi <= 1.0
    except Exception:
        return False
    return False


def array_to_pil(
    arr: Any, fit: Callable[[tuple[int, int]], tuple[int, int]], src: str
) -> tuple[Any, tuple[int, int], tuple[int, int]]:
    """A uint8 PIL image of ``arr`` (pre-shrunk by striding), its original and target size."""
    import numpy as np
    from PIL import Image

    a = arr
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channels-first (C, H, W), as torch tensors come
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ContextError(
            f"{src} has shape {tuple(arr.shape)}; an image array must be (height, width), "
            "(height, width, 3) or (height, width, 4)"
        )
    h, w = a.shape[:2]
    if h < 1 or w < 1:
        raise ContextError(f"{src} is empty (shape {tuple(arr.shape)})")
    if a.dtype.kind not in "buif":
        raise ContextError(f"{src} has dtype {a.dtype}; image arrays must be bool, integer or float")
    target = fit((w, h))
    # Stride huge arrays down to ~2x the target first: cheap, and no full-size copy.
    step = max(1, min(w // (2 * target[0]), h // (2 * target[1])))
    if step > 1:
        a = a[::step, ::step]
    img = Image.fromarray(np.ascontiguousarray(_normalise_array(np, a)))
    return img, (w, h), target


def _normalise_array(np: Any, a: Any) -> Any:
    """Map any bool/int/float array onto uint8 (see ``image_part`` docs for the rules)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind == "b":
        return a.astype(np.uint8) * 255
    if a.dtype.kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return (a.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
        f = a.astype(np.float64)
        return ((f - lo) * (255.0 / ((hi - lo) or 1)) + 0.5).astype(np.uint8)
    f = a.astype(np.float32, copy=True)
    finite = np.isfinite(f)
    if not finite.all():
        f[~finite] = np.nan
    if not finite.any():
        return np.zeros(f.shape, dtype=np.uint8)
    lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
    if lo >= 0 and hi <= 1:
        f *= 255.0
    elif lo >= 0 and hi <= 255:
        pass
    else:
        f = (f - lo) * (255.0 / ((hi - lo) or 1.0))
    f = np.nan_to_num(f, nan=0.0)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)
