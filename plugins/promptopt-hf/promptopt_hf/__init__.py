"""promptopt-hf: the ``hf`` backend (transformers, white box) for promptopt.

Importing this package does not import torch or transformers; they load with the model.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
