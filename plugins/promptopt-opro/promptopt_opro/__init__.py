"""OPRO (Yang et al., "Large Language Models as Optimizers", ICLR 2024) as a promptopt plugin:
method, proposer, loss extractor and selector, all named ``opro``. Nothing is imported here, so
loading the plugin module stays cheap."""
