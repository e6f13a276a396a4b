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


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(metadata, tensors) of a checkpoint file, or RunError in one line if it is damaged or incomplete."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # a file cut short or not safetensors at all
        first = str(exc).splitlines()[0] if str(exc) else "damaged"
        raise RunError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first}); "
                       "train again without --resume") from None
    missing = [k for k in ("info", "optimizer") if k not in (meta or {})]
    missing += [k for k in ("rng.shuffle", "rng.torch") if k not in tensors]
    if missing:
        raise RunError(f"{path}: the checkpoint lacks {', '.join(missing)}; train again without --resume")
    try:
        info, opt = json.loads(meta["info"]), json.loads(meta["optimizer"])
        if not isinstance(info, dict) or not isinstance(opt.get("param_groups"), list) \
                or not isinstance(opt.get("scalars"), dict):
            raise ValueError("unexpected layout")
    except (ValueError, AttributeError) as exc:
        raise RunError(f"{path}: the checkpoint's metadata is damaged ({exc}); train again without --resume") from None
    return meta, tensors


def _restore(path, meta, tensors, opt, rng, device) -> None:
    """Optimizer state and random generators from a checkpoint; RunError in one line if they do not fit."""
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


def load_checkpoint(run_dir, net, opt, rng: torch.Generator, lookahead=None) -> tuple[dict, dict | None]:
    """Restore net, optimizer, generators (and lookahead's slow weights) in place; return (info, best_state or None)."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        raise RunError(f"{path}: no checkpoint to resume from; train without --resume")
    meta, tensors = read_checkpoint(path)
    device = next(net.parameters()).device
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as exc:
        raise RunError(f"{path}: checkpoint does not match this model "
                       f"({' '.join(str(exc).split())[:300]})") from None
    if lookahead is not None:
        for k, slow in lookahead.slow.items():
            if f"lookahead.{k}" not in tensors:
                raise RunError(f"{path}: the checkpoint has no lookahead weights; resume without lookahead")
            slow.copy_(tensors[f"lookahead.{k}"])
    try:
        _restore(path, meta, tensors, opt, rng, device)
    except (IndexError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise RunError(f"{path}: the checkpoint's optimizer state does not fit this model and optimizer "
                       f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); train again without --resume") from None
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    return json.loads(meta["info"]), best
