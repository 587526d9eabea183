"""How readable a prompt is to the task model: the perplexity of its tokens read on their own
(after the model's start of input and the fixed prefix, no question), recorded for the initial
and the final prompt of a run (result.json ``initial_prompt_perplexity``,
``best_prompt_perplexity``)."""

from __future__ import annotations

import math

from promptopt.types import Prompt
from promptopt_greater.layout import Context, prompt_tokens
from promptopt_greater.whitebox import WhiteBox, eval_mode


def prompt_perplexity(wb: WhiteBox, prompt: Prompt) -> float | None:
    """exp(mean NLL) of ``prompt``'s editable tokens given ``encode_input(prefix)`` (without a
    prefix and a start token, the first token is the context of the rest); None when no token
    is left to score."""
    from promptopt_greater.tensors import prompt_nlls

    tokens = list(prompt_tokens(wb, prompt))
    head = wb.encode_input(prompt.prefix)
    if not head:
        head, tokens = tokens[:1], tokens[1:]
    if not tokens:
        return None
    wb.usage.record(forward_passes=1, prompt_tokens=len(head) + len(tokens))
    with eval_mode(wb.model):
        (nll,) = prompt_nlls(
            wb.model,
            [Context(tuple(head), tuple(tokens), ())],
            pad_id=wb.pad_id,
            device=wb.device,
        )
    return math.exp(nll)
