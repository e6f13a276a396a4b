"""The command line: ``seethrough COMMAND``. Each module adds its commands to ``cli``."""

from . import core  # noqa: F401  (registers demo, datasets, models, train, evaluate, predict)
from . import serve  # noqa: F401  (registers serve)
from . import lesson  # noqa: F401  (registers lesson)
from . import explain  # noqa: F401  (registers explain, report)
from . import export  # noqa: F401  (registers export)
from . import experiment  # noqa: F401  (registers experiment learning-curve, experiment invariance)
from .app import cli, main, run

__all__ = ["cli", "main", "run"]
