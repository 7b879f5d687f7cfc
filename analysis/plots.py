"""Figures to bytes. The figures themselves: analysis.loss.plots, analysis.emergence.plots, analysis.report.recipe."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def to_svg(fig) -> bytes:
    """The figure as SVG; the figure stays open (to_png closes it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()


def to_png(fig) -> bytes:
    """The figure as PNG; closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def add_figure(images: dict[str, bytes], name: str, fig) -> str:
    """Put `fig` into `images` as <name>.svg and <name>.png (closing it); returns the PNG's name."""
    images[f"{name}.svg"] = to_svg(fig)
    images[f"{name}.png"] = to_png(fig)
    return f"{name}.png"
