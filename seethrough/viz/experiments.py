"""Figures of the experiments' tables (:mod:`seethrough.experiments`): plain dicts in, a Figure out."""

from __future__ import annotations

import numpy as np

from .figures import plt


def learning_curve_figure(result: dict, title: str | None = None):
    """Mean test accuracy against training images (log scale), one line per model, shaded from the
    worst to the best seed, each seed a dot; the size where a model overtakes the first is marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, m in enumerate(result["models"]):
        rows = [r for r in result["summary"] if r["model"] == m]
        x = np.array([r["size"] for r in rows])
        color = f"C{i}"
        ax.plot(x, [r["mean"] for r in rows], "-o", color=color, label=f"{m} (mean of {result['seeds']} seeds)")
        ax.fill_between(x, [r["min"] for r in rows], [r["max"] for r in rows], color=color, alpha=0.18, lw=0)
        seeds = [r for r in result["rows"] if r["model"] == m]
        ax.scatter([r["size"] for r in seeds], [r["accuracy"] for r in seeds], s=8, color=color, alpha=0.5)
        at = result.get("overtakes", {}).get(m)
        if at:
            ax.axvline(at, color=color, ls=":", lw=1)
            ax.annotate(f"{m} ahead from {at}", (at, ax.get_ylim()[0]), xytext=(4, 6),
                        textcoords="offset points", fontsize=8, color=color)
    ax.set_xscale("log")
    sizes = result["sizes"]
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training images")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or f"Learning curve on {result['data']} ({result['n_test']} test images)", fontsize=10)
    fig.tight_layout()
    return fig


def invariance_figure(result: dict, title: str | None = None):
    """One panel per transform: accuracy against its strength, one line per run."""
    kinds = result["transforms"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.3 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for i, run in enumerate(result["runs"]):
            rows = [r for r in result["rows"] if r["run"] == run and r["transform"] == kind]
            ax.plot([r["level"] for r in rows], [r["accuracy"] for r in rows], "-o", ms=3, color=f"C{i}", label=run)
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel(result["units"][kind])
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
