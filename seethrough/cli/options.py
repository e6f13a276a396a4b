"""Click options made from TrainConfig's fields, so the command line lists exactly the training options.

``@config_options`` adds one option per field (``batch_size`` -> ``--batch-size``, a bool field ->
``--lookahead/--no-lookahead``) with the field's default and help text; :func:`config_from`
turns the parsed values back into a TrainConfig and says which of them the user typed.
"""

from __future__ import annotations

from dataclasses import fields

import click

from ..config import TrainConfig, flag, help_text

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _click_type(annotation: str):
    return _TYPES[annotation.replace(" | None", "").replace(" | dict", "").strip()]  # a dict: Python only


def config_options(func):
    """Decorate a click command with an option for every TrainConfig field."""
    for f in reversed(fields(TrainConfig)):
        kind = _click_type(str(f.type))
        if kind is bool:
            decorator = click.option(f"{flag(f.name)}/--no-{flag(f.name)[2:]}", f.name, default=f.default,
                                     show_default=True, help=help_text(f.name))
        else:
            decorator = click.option(flag(f.name), f.name, type=kind, default=f.default,
                                     show_default=f.default is not None, help=help_text(f.name))
        func = decorator(func)
    return func


def config_from(params: dict) -> tuple[TrainConfig, set[str]]:
    """(the TrainConfig in click's parsed ``params``, the names of the fields the user typed)."""
    ctx = click.get_current_context()
    names = [f.name for f in fields(TrainConfig)]
    given = {n for n in names if ctx.get_parameter_source(n) != click.core.ParameterSource.DEFAULT}
    return TrainConfig(**{n: params[n] for n in names}), given
