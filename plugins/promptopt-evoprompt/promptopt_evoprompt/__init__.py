"""EvoPrompt (Guo et al., ICLR 2024) for promptopt: an optimizer model performs the crossover and
mutation of a genetic algorithm (``evoprompt-ga``) or of differential evolution
(``evoprompt-de``) over a population of prompts scored on the dev split. Black-box: any backend."""

__version__ = "0.1.0"
