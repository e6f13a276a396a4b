"""seethrough: image recognition you can see through.

    >>> import seethrough as st
    >>> data = st.load_dataset("digits")
    >>> data.images.shape
    (1347, 8, 8, 1)
"""

from .__version__ import __version__
from .data import ImageDataset, list_datasets, load_dataset
from .errors import SeethroughError
from .models import create_spec, list_models
from .trained import TrainedModel


def lesson(name: str, **options):
    """A worked lesson (``"convolution"``, ``"pooling"``, ...; see ``seethrough lesson --help``); a notebook draws it."""
    from .lessons import run_lesson

    return run_lesson(name, **options)


def __getattr__(name):  # keep `import seethrough` light: the estimator pulls in scikit-learn's base
    if name == "ImageClassifier":
        from .estimator import ImageClassifier

        return ImageClassifier
    if name == "explain":  # a callable package: st.explain(model, image, method="gradcam")
        import importlib

        return importlib.import_module(".explain", __name__)
    if name == "explanation":  # like explain, but a result that draws its overlays in a notebook
        from .display import explanation

        return explanation
    raise AttributeError(f"module 'seethrough' has no attribute {name!r}")


__all__ = ["__version__", "ImageDataset", "list_datasets", "load_dataset", "SeethroughError",
           "create_spec", "list_models", "TrainedModel", "ImageClassifier", "explain", "explanation", "lesson"]
