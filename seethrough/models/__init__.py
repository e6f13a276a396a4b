"""Models: declarative specs, a registry of named ones, and the PyTorch builder."""

from .registry import DESCRIPTIONS, MODELS, create_spec, list_models, register
from .spec import (LAYER_KINDS, Layer, count_params, describe, has_conv, infer_shapes, is_linear, load_spec,
                   make_spec, spec_to_json)
from .torch_build import build_torch

__all__ = ["DESCRIPTIONS", "MODELS", "create_spec", "list_models", "register", "LAYER_KINDS",
           "Layer", "count_params", "describe", "has_conv", "infer_shapes", "is_linear", "load_spec", "make_spec",
           "spec_to_json", "build_torch"]
