"""Checkpoints a killed run resumes from: one safetensors file, written atomically.

Tensors (weights, optimizer moments, random-generator states) are the file's
tensors; everything else (epoch, history, optimizer settings) is JSON in its
metadata. No pickle is involved.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .. import _io
from ..errors import RunError
from ..run import CHECKPOINT as FILE



def _split_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_checkpoint(run_dir, net, opt, rng: torch.Generator, info: dict, best_state=None, lookahead=None) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if lookahead is not None:  # the slow weights (see .lookahead)
        tensors.update({f"lookahead.{k}": v.detach().cpu().contiguous() for k, v in lookahead.slow.items()})
    if best_state is not None:
        tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    opt_tensors, opt_meta = _split_optimizer(opt)
    tensors.update(opt_tensors)
    tensors["rng.shuffle"] = rng.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"info": json.dumps(info), "optimizer": json.dumps(opt_meta)}
    with _io.atomic_path(Path(run_dir) / FILE) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_checkpoint(run_dir, net, opt, rng: torch.Generator, lookahead=None) -> tuple[dict, dict | None]:
    """Restore net, optimizer, generators (and lookahead's slow weights) in place; return (info, best_state or None)."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        raise RunError(f"{path}: no checkpoint to resume from; train without --resume")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    device = next(net.parameters()).device
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as exc:
        raise RunError(f"{path}: checkpoint does not match this model ({exc})") from None
    if lookahead is not None:
        for k, slow in lookahead.slow.items():
            if f"lookahead.{k}" not in tensors:
                raise RunError(f"{path}: the checkpoint has no lookahead weights; resume without lookahead")
            slow.copy_(tensors[f"lookahead.{k}"])
    opt_meta = json.loads(meta["optimizer"])
    params = [p for group in opt.param_groups for p in group["params"]]  # state_dict numbers them in this order
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, key = k.split(".", 2)
            param = params[int(idx)]
            if v.shape == param.shape:  # a moment: in the parameter's memory layout (channels_last in training),
                v = torch.empty_like(param).copy_(v)  # which fused optimizers assume
            state.setdefault(int(idx), {})[key] = v.to(device) if key != "step" else v
    for k, v in opt_meta["scalars"].items():
        idx, key = k.split(".", 1)
        state.setdefault(int(idx), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    rng.set_state(tensors["rng.shuffle"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    return json.loads(meta["info"]), best
