"""One pipeline: every entry point makes the same run folder; TrainConfig is the one list of options;
the run folder has one owner; the package's layers import one way."""

from __future__ import annotations

import ast
import json
import os
import stat
from dataclasses import fields
from pathlib import Path

import pytest

import seethrough as st
from seethrough import recipes
from seethrough.cli import cli, main
from seethrough.config import TrainConfig, flag, unsupported
from seethrough.errors import RunError, SeethroughError
from seethrough.pipeline import RunOptions, run_recipe, train_run
from seethrough.recipes import Recipe
from seethrough.run import RunFolder, new_run_dir

PACKAGE = Path(st.__file__).parent
TIMING = ("seconds", "images_per_s")


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in RunFolder(run).read_metrics()]


# ---------------------------------------------------------------------- one pipeline
def test_cli_estimator_and_recipe_make_the_same_run_folder(tmp_path, monkeypatch):
    options = dict(epochs=2, lr=0.01, val_fraction=0.1, seed=0, device="cpu")
    assert main(["train", "digits", "--model", "logreg", "--out", str(tmp_path), "--name", "cli",
                 *[a for k, v in options.items() for a in (flag(k), str(v))]]) == 0
    splits = st.load_splits("digits")
    train, test = splits["train"], splits["test"]
    clf = st.ImageClassifier(model="logreg", run_dir=tmp_path / "fit", **options).fit(train.images, train.labels)
    clf.save(tmp_path / "est", test=test)
    recipe = Recipe("same", ("digits",), "the same options as a recipe", "logreg", TrainConfig(**options))
    monkeypatch.setattr(recipes, "RECIPES", recipes.RECIPES + [recipe])
    run_recipe("digits", "same", run_dir=tmp_path / "recipe")

    runs = [tmp_path / "cli", tmp_path / "est", tmp_path / "recipe"]
    assert _files(runs[0]) == _files(runs[1]) == _files(runs[2])
    assert {"model.json", "model.safetensors", "metrics.jsonl", "checkpoint/state.safetensors",
            "evaluation.json", "confusion.png"} <= set(_files(runs[0]))
    assert _metrics(runs[0]) == _metrics(runs[1]) == _metrics(runs[2])
    accuracy = [json.loads((r / "evaluation.json").read_text())["accuracy"] for r in runs]
    assert accuracy[0] == accuracy[1] == accuracy[2]


def test_demo_runs_have_their_evaluation(tmp_path):
    from seethrough.demo import run_demo

    run_demo(tmp_path / "demo", device="cpu", progress=False, log=lambda *_: None)
    for name in ("logreg", "smallcnn"):
        run = RunFolder(tmp_path / "demo" / "runs" / name)
        assert run.evaluation().is_file() and run.confusion().is_file()


def test_demo_never_replaces_an_existing_folder(tmp_path, monkeypatch):
    from seethrough import demo

    monkeypatch.setattr(demo, "DEMO_RUNS", [("logreg", "logreg", dict(epochs=1))])
    monkeypatch.setattr(demo, "demo_report", lambda results, test, sample: "<html></html>")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep me")
    result = demo.run_demo(tmp_path / "d", device="cpu", progress=False, log=lambda *_: None)
    assert result["report"].parent == tmp_path / "d-2"
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep me"


# ---------------------------------------------------------------------- one list of options
def test_the_four_lists_of_options_agree():
    names = [f.name for f in fields(TrainConfig)]
    train_options = {p.name for p in cli.commands["train"].params}
    assert set(names) <= train_options
    for f in fields(TrainConfig):  # every option's help is the field's help
        option = next(p for p in cli.commands["train"].params if p.name == f.name)
        assert f.metadata["help"] in option.help
    params = st.ImageClassifier().get_params()
    assert set(names) <= set(params)
    for name in names:  # documented
        assert f"    {name} : " in st.ImageClassifier.__doc__
    # the NumPy engine refuses exactly the fields marked torch-only
    torch_only = {f.name for f in fields(TrainConfig) if "numpy" not in f.metadata["engines"]}
    changed = {"patience": 3, "augment": "flip", "label_smoothing": 0.1, "class_weight": "balanced", "shift": 2,
               "lookahead": True, "bias_lr_scale": 2.0, "head_lr_scale": 0.5, "body_lr_scale": 0.1, "head_epochs": 2}
    assert set(changed) == torch_only
    refused = unsupported(TrainConfig(**changed), "numpy")
    assert [r.split()[0] for r in refused] == [flag(n) for n in names if n in torch_only]
    for r in recipes.RECIPES:  # a recipe is a TrainConfig
        assert isinstance(r.config, TrainConfig)


@pytest.mark.parametrize("option, value, message", [
    ("lr", "inf", "--lr must be positive and finite"),
    ("lr", "nan", "--lr must be positive and finite"),
    ("weight-decay", "-1", "--weight-decay / weight_decay must be 0 or more"),
    ("momentum", "-1", "--momentum must be in [0, 1)"),
    ("label-smoothing", "5", "--label-smoothing / label_smoothing must be in [0, 1)"),
    ("patience", "0", "--patience must be at least 1"),
])
def test_nonsense_options_are_refused(option, value, message, capsys, tmp_path):
    code = main(["train", "digits", f"--{option}", value, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err.replace("\n", " ") and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_numpy_engine_names_every_option_it_lacks():
    from seethrough.scratch.fit import check_numpy_config

    with pytest.raises(SeethroughError, match="--augment, --lookahead are not available with --engine numpy"):
        check_numpy_config(TrainConfig(augment="flip", lookahead=True))


# ---------------------------------------------------------------------- the run folder
def test_resume_with_another_model_is_refused(tmp_path, tiny_images):
    splits = {"train": tiny_images}
    train_run(splits, "logreg", TrainConfig(epochs=1, device="cpu"), RunOptions(run_dir=tmp_path / "r"))
    with pytest.raises(RunError, match="trained as 'logreg', not 'smallcnn'"):
        train_run(splits, "smallcnn", TrainConfig(epochs=2, device="cpu"),
                  RunOptions(run_dir=tmp_path / "r", resume=True))


def test_a_run_killed_in_its_first_epoch_can_be_resumed_or_reused(tmp_path, tiny_images):
    run = tmp_path / "r"
    run.mkdir()
    (run / ".model.json.abc.tmp").write_text("half")  # what a killed atomic write leaves
    assert new_run_dir(tmp_path, "r") == (run, False)  # nothing trained there: reused
    notes = []
    result = train_run({"train": tiny_images}, "logreg", TrainConfig(epochs=1, device="cpu"),
                       RunOptions(run_dir=run, resume=True, log=notes.append))
    assert len(result.history) == 1 and any("no checkpoint yet" in n for n in notes)
    assert not list(run.rglob("*.tmp"))
    assert new_run_dir(tmp_path, "r") == (tmp_path / "r-2", True)


def test_train_into_a_taken_name_says_where_it_writes(tmp_path, capsys):
    args = ["train", "digits", "--model", "logreg", "--epochs", "1", "--out", str(tmp_path), "--name", "x",
            "--device", "cpu"]
    assert main(args) == 0 and main(args) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "this one goes to" in out and str(tmp_path / "x-2") in out
    assert (tmp_path / "x" / "model.json").is_file() and (tmp_path / "x-2" / "model.json").is_file()


def test_evaluate_on_other_data_writes_beside_the_runs_own(tmp_path, capsys):
    from conftest import write_image_folder

    folder = write_image_folder(tmp_path / "shapes", n_per_class=8, size=(12, 12))
    other = write_image_folder(tmp_path / "other", n_per_class=5, size=(20, 20))
    assert main(["train", str(folder), "--model", "logreg", "--epochs", "1", "--out", str(tmp_path / "runs"),
                 "--name", "r", "--device", "cpu"]) == 0
    run = RunFolder(tmp_path / "runs" / "r")
    own = run.evaluation().read_text()
    assert main(["evaluate", str(run.path), "--data", str(other)]) == 0
    out = capsys.readouterr().out
    assert run.evaluation().read_text() == own  # the run's own results are kept
    assert run.evaluation(str(other)).is_file() and run.confusion(str(other)).is_file()
    assert "converted to the model's input" in out


def test_files_follow_the_umask(tmp_path):
    from seethrough import _io

    _io.write_text(tmp_path / "a.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode)
    assert mode == _io.FILE_MODE and mode != 0o600


# ---------------------------------------------------------------------- layers import one way
# Lower layers first; a module may import from its own layer or any layer before it.
LAYERS = [
    {"__version__", "errors", "_io", "config", "htmlparts", "allocator"},
    {"data", "viz", "run", "calibrate", "unfamiliar"},
    {"models", "devices", "fused"},
    {"trained"},
    {"train", "scratch", "evaluate"},
    {"explain", "recipes", "export", "transfer"},
    {"pipeline"},
    {"estimator", "demo", "report", "lessons", "experiments"},
    {"web", "cli", "display", "__init__", "__main__"},
]
UPWARD_ALLOWED: set = set()  # none: each class draws itself in a notebook from its own layer
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(module_path: Path) -> str:
    rel = module_path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The top-level seethrough modules ``path`` imports (relative or absolute)."""
    tree = ast.parse(path.read_text())
    out = set()
    depth_of_pkg = len(path.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb to the package root
                up = node.level - 1
                if up < depth_of_pkg:  # inside the same sub-package
                    continue
                names = (node.module or "").split(".") if node.module else [a.name for a in node.names]
                out.add(names[0] if node.module else names[0])
            elif node.module and node.module.startswith("seethrough."):
                out.add(node.module.split(".")[1])
    return out


def test_imports_run_one_way():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        here = _top(path)
        for target in _imports(path):
            if target == here:
                continue
            assert here in LAYER_OF and target in LAYER_OF, f"{path}: unknown module {here} or {target}"
            if LAYER_OF[target] > LAYER_OF[here] and target not in UPWARD_ALLOWED:
                bad.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(bad))


# ---------------------------------------------------------------------- a CLI that feels finished
def _commands():
    from seethrough.cli import cli

    for name, command in cli.commands.items():
        subs = getattr(command, "commands", None)
        yield from ((f"{name} {s}", c) for s, c in subs.items()) if subs else [(name, command)]


def test_every_option_has_help_and_every_command_examples():
    import click

    for name, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"seethrough {name} {param.opts[0]} has no help text"
        assert command.epilog and "Examples:" in command.epilog, f"seethrough {name} --help has no examples"


def test_bare_seethrough_prints_help_and_succeeds(capsys):
    assert main([]) == 0
    assert "Commands:" in capsys.readouterr().out


def test_the_readme_lists_every_registered_model():
    readme = (PACKAGE.parent / "README.md").read_text()
    missing = [m for m in st.list_models() if f"`{m}`" not in readme]
    assert not missing, f"README.md does not list {missing}"
