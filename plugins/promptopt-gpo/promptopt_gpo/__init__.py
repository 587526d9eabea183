"""GPO (Tang et al., AAAI 2025) for promptopt: an optimizer model reads the trajectory of
earlier prompts with their scores and writes whole new prompts. Black-box: any backend."""

__version__ = "0.1.0"
