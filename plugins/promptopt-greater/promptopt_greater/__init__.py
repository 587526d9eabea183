"""GReaTer for promptopt: gradients over reasoning for token-level prompt optimization.

Importing this package does not import torch; the tensor code is loaded when a step runs.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
