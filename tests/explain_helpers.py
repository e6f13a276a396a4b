"""Small random-weight models for the explanation tests (no training needed)."""

from __future__ import annotations

import numpy as np
import torch

from seethrough.models import create_spec
from seethrough.trained import Preprocess, TrainedModel


def random_model(name_or_spec, shape=(16, 16, 1), n_classes=3, seed=0, dtype=torch.float32) -> TrainedModel:
    h, w, c = shape
    torch.manual_seed(seed)
    spec = create_spec(name_or_spec, (c, h, w), n_classes)
    model = TrainedModel(spec, shape, [f"c{i}" for i in range(n_classes)],
                         Preprocess([100.0] * c, [60.0] * c), meta={"model": str(name_or_spec)})
    model.net.to(dtype).eval()
    return model


def random_images(n=4, shape=(16, 16, 1), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
