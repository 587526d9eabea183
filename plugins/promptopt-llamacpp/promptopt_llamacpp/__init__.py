"""promptopt's llama.cpp plugin: the ``llamacpp`` backend and the ``promptopt transfer`` command."""

__version__ = "0.1.0"
