"""seethrough: image recognition you can see through.

    >>> import seethrough as st
    >>> data = st.load_dataset("digits")
    >>> data.images.shape
    (1347, 8, 8, 1)

The names below are imported on first use (PEP 562), so ``import seethrough`` (and
``seethrough --help``) does not load torch or scikit-learn until something needs them.
"""

import importlib

from .__version__ import __version__

# public name -> the module that defines it
_EXPORTS = {
    "ImageDataset": ".data", "list_datasets": ".data", "load_dataset": ".data", "load_splits": ".data",
    "SeethroughError": ".errors", "TrainConfig": ".config",
    "create_spec": ".models", "list_models": ".models",
    "TrainedModel": ".trained", "ImageClassifier": ".estimator", "keep_freed_memory": ".allocator",
}


def lesson(name: str, **options):
    """A worked lesson (``"convolution"``, ``"pooling"``, ...; see ``seethrough lesson --help``); a notebook draws it."""
    from .lessons import run_lesson

    return run_lesson(name, **options)


def __getattr__(name):
    if name == "explain":  # a callable package: st.explain(model, image, method="gradcam")
        return importlib.import_module(".explain", __name__)
    if name == "explanation":  # like explain, but a result that draws its overlays in a notebook
        from .display import explanation

        return explanation
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seethrough' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS, "explain", "explanation"])


__all__ = ["__version__", *_EXPORTS, "explain", "explanation", "lesson"]
