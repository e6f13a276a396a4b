"""The NumPy engine: every layer's forward and backward written out by hand.

* :mod:`.layers`: convolution, pooling, ReLU, flatten, linear, batch norm, dropout and the
  two losses, each with its backward pass.
* :mod:`.model`: :class:`Net`, the layers of a spec in order, with PyTorch's state-dict keys.
* :mod:`.optim`: SGD and Adam as PyTorch defines them.
* :mod:`.bridge`: a run folder's TrainedModel <-> a Net (same weights, same inputs).
* :mod:`.fit`: ``seethrough train --engine numpy``.
"""

from .layers import SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, sigmoid, softmax
from .model import SUPPORTED, Net
from .optim import SGD, Adam

__all__ = ["Net", "SUPPORTED", "SGD", "Adam", "SoftmaxCrossEntropy", "SigmoidBinaryCrossEntropy",
           "sigmoid", "softmax"]
