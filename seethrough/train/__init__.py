"""Training: one loop for every model, checkpoints, and run folders."""

from ..config import TrainConfig
from .loop import fit, lr_factor, new_model, read_metrics

__all__ = ["TrainConfig", "fit", "lr_factor", "new_model", "read_metrics"]
