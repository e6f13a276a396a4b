"""Reports: self-contained HTML pages built from trained models."""

from .demo import demo_report

__all__ = ["demo_report"]
