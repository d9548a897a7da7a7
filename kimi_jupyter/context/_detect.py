"""Recognise pandas, polars, numpy, PIL and matplotlib objects without importing them.

``import kimi_jupyter.context`` must stay cheap, so heavy libraries are never imported just
to ask "is this a DataFrame?". If a library is not in :data:`sys.modules`, no object of its
types can exist, so looking the module up there is both safe and exact.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "as_figure",
    "is_ipython_image",
    "is_numpy_array",
    "is_pandas_frame",
    "is_pil_image",
    "is_polars_frame",
    "is_polars_lazy",
]


def _cls(module: str, name: str) -> type | None:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def _isinstance(obj: Any, module: str, name: str) -> bool:
    cls = _cls(module, name)
    try:
        return cls is not None and isinstance(obj, cls)
    except Exception:
        return False


def is_numpy_array(obj: Any) -> bool:
    """True for ``numpy.ndarray`` (and subclasses)."""
    return _isinstance(obj, "numpy", "ndarray")


def is_pandas_frame(obj: Any) -> bool:
    """True for a pandas DataFrame or Series."""
    return _isinstance(obj, "pandas", "DataFrame") or _isinstance(obj, "pandas", "Series")


def is_polars_frame(obj: Any) -> bool:
    """True for a polars DataFrame or Series (eager)."""
    return _isinstance(obj, "polars", "DataFrame") or _isinstance(obj, "polars", "Series")


def is_polars_lazy(obj: Any) -> bool:
    """True for a polars LazyFrame."""
    return _isinstance(obj, "polars", "LazyFrame")


def is_pil_image(obj: Any) -> bool:
    """True for a ``PIL.Image.Image``."""
    return _isinstance(obj, "PIL.Image", "Image")


def is_ipython_image(obj: Any) -> bool:
    """True for ``IPython.display.Image`` display objects."""
    return _isinstance(obj, "IPython.core.display", "Image")


def as_figure(obj: Any) -> Any | None:
    """The matplotlib Figure that ``obj`` is or draws on (Figure, Axes, seaborn grids,
    an array of Axes from ``plt.subplots``), else None."""
    figure_cls = _cls("matplotlib.figure", "Figure")
    if figure_cls is None:
        return None
    try:
        if isinstance(obj, figure_cls):
            return obj
        axes_cls = _cls("matplotlib.axes", "Axes")
        if axes_cls is not None and isinstance(obj, axes_cls):
            fig = obj.get_figure(root=True) if _takes_root(obj) else obj.figure
            return fig if isinstance(fig, figure_cls) else None
        if is_numpy_array(obj) and obj.dtype == object and obj.size > 0:
            first = obj.flat[0]
            if axes_cls is not None and isinstance(first, axes_cls):
                return as_figure(first)
            return None
        module = type(obj).__module__ or ""
        if module.startswith("seaborn"):
            fig = getattr(obj, "figure", None)
            return fig if isinstance(fig, figure_cls) else None
    except Exception:
        return None
    return None


def _takes_root(axes: Any) -> bool:
    import inspect

    try:
        return "root" in inspect.signature(axes.get_figure).parameters
    except (TypeError, ValueError):
        return False
