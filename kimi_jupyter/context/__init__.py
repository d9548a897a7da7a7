"""Python objects to chat message content parts: ``{var}`` interpolation, images, frames, video.

Importing this package imports no heavy library: pandas, polars, numpy, matplotlib and
Pillow are only touched when an object from them is converted.
"""

from __future__ import annotations

from .cells import recent_cells
from .errors import ContextError
from .frames import estimate_tokens, is_frame, summarize_frame
from .images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIZE,
    ImageInfo,
    encode_image,
    image_part,
    image_part_with_info,
    is_image_like,
    sniff_image_format,
)
from .interpolate import HistorySource, array_summary, build_content, referenced_names, value_parts
from .plots import PlotCapture, get_plot_capture
from .video import DEFAULT_MAX_VIDEO_BYTES, VideoInfo, is_video_path, video_part, video_part_with_info

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_VIDEO_BYTES",
    "ContextError",
    "HistorySource",
    "ImageInfo",
    "PlotCapture",
    "VideoInfo",
    "array_summary",
    "build_content",
    "encode_image",
    "estimate_tokens",
    "get_plot_capture",
    "image_part",
    "image_part_with_info",
    "is_frame",
    "is_image_like",
    "is_video_path",
    "recent_cells",
    "referenced_names",
    "sniff_image_format",
    "summarize_frame",
    "value_parts",
    "video_part",
    "video_part_with_info",
]
