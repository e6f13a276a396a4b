"""The local web page: an uploaded or drawn image flows through your own model.

:func:`create_app` builds the FastAPI app (JSON API under ``/api``, documented at
``/docs``; the page at ``/``); ``seethrough serve [RUN...]`` runs it with uvicorn. The
page can also build a data set and train on it, in a workspace folder (:mod:`.workspace`,
:mod:`.jobs`, :mod:`.training`, :mod:`.train_api`).
"""

from .app import create_app
from .store import Run, RunStore

__all__ = ["create_app", "Run", "RunStore"]
