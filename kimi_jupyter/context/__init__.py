"""Python objects to chat message content parts: ``{var}`` interpolation, images, frames, video.

Importing this package imports no heavy library: pandas, polars, numpy, matplotlib and
Pillow are only touched when an object from them is converted.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; a name's module is imported the first time the name is used, so that
# `%load_ext` (which needs only `plots`) does not pay for images, frames and interpolation.
# No submodule shares a name with a function exported here (``compose`` lives in
# ``composer``): importing a submodule sets the package attribute of its name to the module.
_EXPORTS = {
    "ContextError": "errors",
    "DEFAULT_MAX_PIXELS": "images",
    "DEFAULT_MAX_SIZE": "images",
    "DEFAULT_MAX_VIDEO_BYTES": "video",
    "HistorySource": "interpolate",
    "ImageInfo": "images",
    "PlotCapture": "plots",
    "VideoInfo": "video",
    "array_summary": "interpolate",
    "build_content": "interpolate",
    "cell_part": "composer",
    "compose": "composer",
    "flatten": "composer",
    "frontend_parts": "composer",
    "merge_text": "composer",
    "encode_image": "images",
    "estimate_tokens": "frames",
    "get_plot_capture": "plots",
    "image_part": "images",
    "image_part_with_info": "images",
    "is_frame": "frames",
    "is_image_like": "images",
    "is_video_path": "video",
    "recent_cells": "cells",
    "referenced_names": "interpolate",
    "sniff_image_format": "images",
    "summarize_frame": "frames",
    "value_parts": "interpolate",
    "video_part": "video",
    "video_part_with_info": "video",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kimi_jupyter.context' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
