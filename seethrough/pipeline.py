"""One pipeline: every way of training goes through :func:`train_run`.

The CLI's ``train``, a recipe (:func:`run_recipe`), ``demo`` and ``ImageClassifier.fit`` all
call it: data splits + a model + a :class:`~seethrough.config.TrainConfig` + :class:`RunOptions`
in, a trained model, its history and its evaluation out, with the complete run folder written
(model.json, model.safetensors, metrics.jsonl, checkpoint/, evaluation.json, confusion.png and,
when asked, snapshots/). :func:`train` is the same for a data set named by a string: it loads the
splits and names the run folder as the CLI does.

    >>> import seethrough as st
    >>> from seethrough.pipeline import RunOptions, train_run
    >>> splits = st.load_splits("digits")
    >>> result = train_run(splits, "logreg", st.TrainConfig(epochs=2), RunOptions())  # doctest: +SKIP
    >>> round(result.evaluation.accuracy, 2)                                         # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .calibrate import calibrate_model, validation_split
from .config import ENGINES, TrainConfig
from .data import ImageDataset, load_splits
from .errors import RunError, SeethroughError
from .evaluate import Evaluation, evaluate
from .recipes import Recipe, data_key, get_recipe, prepare_model
from .run import RunFolder, new_run_dir
from .train import fit, new_model
from .train.distributed import rank, world_size
from .trained import TrainedModel


@dataclass
class RunOptions:
    """How a training runs, beside what it trains (the TrainConfig)."""

    run_dir: Path | str | None = None   # the run folder to write (None: nothing is written)
    resume: bool = False                # continue run_dir from its checkpoint
    recipe: Recipe | None = None        # its model surgery (whitening, airbench's init) and test-time views
    engine: str = "torch"               # "torch", or "numpy" for the from-scratch engine
    snapshots: bool = False             # keep first-layer weights and a test image's feature maps every epoch
    progress: bool = False              # one line per epoch and a progress bar
    normalize: str = "standard"         # input scaling of a new model: "standard" (mean/std) or "unit" (/255)
    meta: dict = field(default_factory=dict)   # more facts for model.json (where the data came from)
    on_metrics: Callable[[dict], None] | None = None  # called with each epoch's metrics row (live progress)
    stop: threading.Event | None = None  # set it to cancel (TrainingStopped; the last full epoch stays on disk)
    log: Callable[[str], None] = lambda text: None     # where notes go (the CLI prints them)
    init_from: str | None = None        # start from this run folder's (or bundled network's) layers (transfer.py)
    freeze: bool = False                # with init_from: train only the new last layer
    features: str | None = None         # "SOURCE[:LAYER]": logistic regression on a network's frozen features


@dataclass
class RunResult:
    model: TrainedModel
    history: list[dict]
    evaluation: Evaluation | None       # on the test split (None without one)
    run_dir: Path | None
    tta_accuracy: float | None = None   # the recipe's test-time-augmented accuracy
    seconds_train: float = 0.0
    seconds_score: float = 0.0


def check_engine(config: TrainConfig, engine: str, resume: bool = False) -> None:
    """SeethroughError before any data is read when ``engine`` cannot run ``config`` here."""
    if engine not in ENGINES:
        raise SeethroughError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "numpy":
        from .scratch.fit import check_numpy_config

        if world_size() > 1:
            raise SeethroughError(f"--engine numpy runs in one process; $WORLD_SIZE is {world_size()} "
                                  "(use --engine torch under torchrun)")
        check_numpy_config(config, resume)


def _model_for(splits, model, config: TrainConfig, options: RunOptions) -> tuple[TrainedModel, bool]:
    """(the model to train, whether it continues from a checkpoint).

    On --resume a run folder with a checkpoint is continued: its model.json is read when it is
    there (a kill can fall between the checkpoint's write and model.json's, in the first epoch);
    a folder without a checkpoint (killed before its first epoch ended) starts afresh.
    """
    train = splits["train"]
    folder = RunFolder(options.run_dir) if options.run_dir is not None else None
    resuming = options.resume and folder is not None and folder.checkpoint.is_file()
    if options.resume and folder is None:
        raise SeethroughError("--resume needs a run folder")
    if options.resume and not resuming:
        options.log(f"{folder.path}: no checkpoint yet (killed in its first epoch); training from the start")
    if resuming and folder.model_json.is_file():
        loaded = TrainedModel.load(folder.path, device=config.device)
        if isinstance(model, str) and Path(model).stem != loaded.facts.model:
            raise RunError(f"{folder.path}: it was trained as {loaded.facts.model!r}, not {model!r}; "
                           f"resume without --model or with --model {loaded.facts.model}")
        if loaded.class_names != train.class_names:
            raise RunError(f"{folder.path}: its classes {loaded.class_names} differ from "
                           f"{train.name}'s {train.class_names}")
        return loaded, True
    if isinstance(model, TrainedModel):
        return model, resuming
    new = new_model(model, train, normalize=options.normalize, seed=config.seed, meta=options.meta)
    if options.recipe is not None:
        prepare_model(options.recipe, new, train.images)
    return new, resuming


def train_run(splits: dict[str, ImageDataset], model, config: TrainConfig | None = None,
              options: RunOptions | None = None) -> RunResult:
    """Train ``model`` on ``splits["train"]``, evaluate it on ``splits["test"]`` (if any); write the run folder.

    ``model`` is a registered name, a JSON spec file, a list of layers, or a
    :class:`~seethrough.trained.TrainedModel` to train further. Under torchrun every rank
    trains; only rank 0 evaluates and writes (the others return with ``evaluation=None``).
    """
    config = (config or TrainConfig()).check()
    options = options or RunOptions()
    check_engine(config, options.engine, options.resume)
    if config.head_epochs and not options.resume and (not options.init_from or options.freeze):
        raise SeethroughError("--head-epochs trains the new last layer of a --from run alone before the rest; "
                              "expected --from SOURCE without --freeze")
    if options.init_from or options.features or options.freeze:
        model, splits, config = _start_from(splits, config, options)
    folder = RunFolder(options.run_dir) if options.run_dir is not None else None
    if folder is not None and rank() == 0:
        folder.remove_temporary()  # what a killed write left behind
    net_model, resuming = _model_for(splits, model, config, options)
    test, train = splits.get("test"), splits["train"]
    if rank() == 0:  # under torchrun, rank 0 speaks for all
        options.log(f"training {net_model.facts.model} on {train.name}: {len(train)} images "
                    f"{'x'.join(map(str, train.image_shape))}, {train.n_classes} classes"
                    + (f" -> {folder.path}" if folder else "")
                    + (f" on {world_size()} processes" if world_size() > 1 else ""))
    t0 = time.perf_counter()
    if options.engine == "numpy":
        if options.snapshots:
            raise SeethroughError("--snapshots works with --engine torch only")
        from .scratch.fit import fit_numpy

        history = fit_numpy(net_model, splits["train"], config, run_dir=options.run_dir,
                            progress=options.progress, log=options.log if options.progress else None,
                            on_metrics=options.on_metrics)
    else:
        on_epoch = None
        if options.snapshots:
            if folder is None or test is None:
                raise SeethroughError("--snapshots needs a run folder and a test split")
            from .explain.snapshots import Snapshots

            on_epoch = Snapshots(folder.path, test.images[0], label=test.class_names[test.labels[0]])
        if config.head_epochs and not resuming:  # a --from run: its new last layer alone first (transfer.warm_head)
            from .transfer import warm_head

            if rank() == 0:
                options.log(f"the new last layer alone for {config.head_epochs} epochs, then every layer "
                            f"for {config.epochs}")
            warm_head(net_model, splits["train"], config, progress=options.progress, stop=options.stop)
        history = fit(net_model, splits["train"], config, run_dir=options.run_dir, resume=resuming,
                      progress=options.progress, on_epoch=on_epoch, on_metrics=options.on_metrics,
                      stop=options.stop)
    result = RunResult(net_model, history, None, folder.path if folder else None,
                       seconds_train=time.perf_counter() - t0)
    if rank() != 0:  # under torchrun the other ranks are done: rank 0 calibrates, evaluates and writes
        return result
    val = validation_split(train, config.val_fraction, config.seed)  # the images fit held out
    if val is not None:  # the temperature and the unfamiliar-image threshold, into model.json
        calibrate_model(net_model, val)
        if folder is not None:
            net_model.save(folder.path)
    if test is None:
        return result
    t1 = time.perf_counter()
    result.evaluation = evaluate(net_model, test)
    if options.recipe is not None and options.recipe.tta != "none":
        probs = net_model.predict_tta(test.images, views=options.recipe.tta)
        result.tta_accuracy = float((probs.argmax(1) == test.labels).mean())
    result.seconds_score = time.perf_counter() - t1
    if folder is not None:
        folder.write_evaluation(result.evaluation)
    return result


def _start_from(splits, config: TrainConfig, options: RunOptions):
    """(model, splits, config) for a run that starts from another network's layers: the new model,
    the splits matched to its input (:mod:`seethrough.transfer`), and the copied layers' learning-rate
    scale (0.1 unless given or frozen) and the epochs of its new last layer alone (5 unless given or frozen)."""
    from dataclasses import replace

    from .transfer import BODY_LR_SCALE, HEAD_EPOCHS, start_from

    if options.freeze and not options.init_from:
        raise SeethroughError("--freeze keeps the layers copied by --from; give --from SOURCE too")
    if options.engine == "numpy":
        raise SeethroughError("--from and --features train with --engine torch only (the NumPy engine keeps "
                              "no layers fixed)")
    model, splits = start_from(options.init_from, options.features, freeze=options.freeze, splits=splits,
                               seed=config.seed)
    model.meta.update(options.meta)
    if options.init_from and not options.freeze:   # the defaults of a network whose copied layers train
        if config.body_lr_scale is None:
            config = replace(config, body_lr_scale=BODY_LR_SCALE)
        if config.head_epochs is None:
            config = replace(config, head_epochs=HEAD_EPOCHS)
    return model, splits, config


def run_name(data, model) -> str:
    """The default run folder name: ``<data>-<model>`` (a folder's own name for a folder)."""
    data_name = Path(str(data)).name if Path(str(data)).exists() else str(data)
    return f"{data_name}-{Path(str(model)).stem if isinstance(model, (str, Path)) else 'custom'}"


def train(data, model="smallcnn", config: TrainConfig | None = None, *, out="runs", name: str | None = None,
          data_dir=None, size=None, strict: bool = False, cache: bool = True, **options) -> RunResult:
    """:func:`train_run` for a data set name or folder: load its splits, name the run folder, train.

    The run folder is ``out/name`` (default name ``<data>-<model>``); when a run is already
    there a new one gets ``-2``, ``-3`` ... (``result.run_dir`` says which), unless
    ``resume=True`` continues it. ``cache=False`` decodes an image folder afresh, without the
    decode cache. ``options`` are :class:`RunOptions` fields.
    """
    config = (config or TrainConfig()).check()
    check_engine(config, options.get("engine", "torch"), options.get("resume", False))  # before any data is read
    if options.get("init_from") or options.get("features"):  # named after what it starts from
        from .transfer import run_model_name

        model = run_model_name(options.get("init_from"), options.get("features"))
    base = name or run_name(data, model)
    if options.get("resume"):
        run_dir = Path(out) / base
    else:
        run_dir, renamed = new_run_dir(out, base)
        if renamed:
            options.get("log", print)(f"{Path(out) / base} holds a run already; this one goes to {run_dir} "
                                      "(--resume continues the first, --name picks another)")
    source = str(Path(data).resolve()) if Path(str(data)).exists() else str(data)
    meta = {"data": source, "data_options": {"size": size}, **options.pop("meta", {})}
    splits = load_splits(data, data_dir=data_dir, size=size, strict=strict, seed=config.seed, cache=cache)
    return train_run(splits, model, config, RunOptions(run_dir=run_dir, meta=meta, **options))


def with_recipe(recipe: Recipe, config: TrainConfig, given, model=None, normalize=None):
    """(model, normalize, config) for ``recipe``, where the options in ``given`` (and a model or
    normalisation the user chose) win over the recipe's."""
    return (model or recipe.model, normalize or recipe.normalize, recipe.merge(config, given))


def run_recipe(data, name: str, *, data_dir=None, seed: int = 0, tune: bool = False, progress: bool = False,
               run_dir=None, **overrides) -> dict:
    """Load ``data``, train its recipe ``name`` and score it; returns a dict of results and timings.

    With ``tune=True`` a stratified tenth of the training images is held out and scored instead
    of the test split (the way the recipes were tuned). ``overrides`` replace recipe options
    (TrainConfig fields, or ``model`` for another model). The wall time counts loading,
    whitening, training and scoring; the training goes through :func:`train_run`.
    """
    import torch

    t0 = time.perf_counter()
    recipe = get_recipe(data, name)
    model = overrides.pop("model", recipe.model)
    config = recipe.merge(TrainConfig(seed=seed, device="cpu", **overrides), set(overrides) | {"seed", "device"})
    parts = load_splits(data, data_dir=data_dir, seed=seed)
    if tune:
        train, held = parts["train"].split(0.1, seed=seed)
        parts = {"train": train, "test": held}
    t_load = time.perf_counter() - t0
    result = train_run(parts, model, config, RunOptions(recipe=recipe, run_dir=run_dir, progress=progress))
    acc = result.evaluation.accuracy
    return {"recipe": f"{data_key(data)} --recipe {name}", "model": result.model, "history": result.history,
            "split": "validation" if tune else "test", "accuracy": acc, "accuracy_tta": result.tta_accuracy,
            "final": acc if result.tta_accuracy is None else result.tta_accuracy, "tta": recipe.tta,
            "seconds_load": t_load, "seconds_train": result.seconds_train, "seconds_score": result.seconds_score,
            "seconds_total": time.perf_counter() - t0, "epochs": config.epochs, "threads": torch.get_num_threads()}


__all__ = ["RunOptions", "RunResult", "check_engine", "run_name", "run_recipe", "train", "train_run", "with_recipe"]
