"""Do no harm: a run's final prompt replaces its initial prompt only when it beats it on the dev
split by a one-sided paired test on the same examples (``-o accept=paired``, the default for
every method), or whatever its margin (``-o accept=best``, the methods' reference behaviour).

The loop applies the rule after ``Method.finalize`` (:func:`accept_final`), so every method, a
third-party one included, gets it without code of its own. Per-example dev scores come from the
run's history when the method's evaluations kept them (``PromptLoss.outcomes``), else from
evaluating both prompts on the dev split with the task model through the evaluation cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from promptopt.metrics import is_binary
from promptopt.stats import MCNEMAR, PERMUTATION, mcnemar_exact, sign_flip_p
from promptopt.types import Prompt

if TYPE_CHECKING:
    from promptopt.context import StepContext
    from promptopt.history import History

#: ``paired``: only a significant dev improvement replaces the initial prompt; ``best``: the
#: method's choice always does.
AcceptRule = Literal["paired", "best"]
ACCEPT_RULES: tuple[AcceptRule, ...] = ("paired", "best")
#: The significance level of the paired rule.
ALPHA = 0.05
#: Where the paired scores came from (``accept_scores_from`` in ``result.json``).
FROM_HISTORY, FROM_EVALUATION = "history", "evaluation"
#: Reasoning tokens of the dev evaluation when neither the reasoner nor the loss extractor
#: declares ``max_new_tokens`` (``promptopt eval``'s default).
DEFAULT_REASONING_TOKENS = 512


@dataclass(frozen=True)
class DevScores:
    """Per-example dev scores of the initial prompt and of the candidate, in the same example
    order, and where they came from (:data:`FROM_HISTORY` or :data:`FROM_EVALUATION`)."""

    initial: tuple[float, ...]
    candidate: tuple[float, ...]
    source: str


def paired_test(candidate: Sequence[float], initial: Sequence[float]) -> tuple[str, float]:
    """The test and one-sided p-value that ``candidate`` scores higher than ``initial`` on the
    same examples: exact McNemar when every score is 0 or 1, else the paired sign-flip
    permutation test."""
    if len(candidate) != len(initial):
        raise ValueError(f"paired scores differ in length: {len(candidate)} != {len(initial)}")
    if is_binary([*candidate, *initial]):
        only_candidate = sum(1 for c, i in zip(candidate, initial, strict=True) if c > i)
        only_initial = sum(1 for c, i in zip(candidate, initial, strict=True) if i > c)
        return MCNEMAR, mcnemar_exact(only_candidate, only_initial, alternative="greater")
    differences = [c - i for c, i in zip(candidate, initial, strict=True)]
    return PERMUTATION, sign_flip_p(differences, alternative="greater")[0]


@dataclass(frozen=True)
class Decision:
    """What the rule decided: whether the method's choice (``candidate``) replaces the initial
    prompt, why, and the paired figures it rests on (None when not measured)."""

    rule: str
    accepted: bool
    reason: str
    candidate: str
    test: str | None = None
    difference: float | None = None
    p_value: float | None = None
    n: int | None = None
    source: str | None = None

    def fields(self) -> dict[str, Any]:
        """The ``result.json`` fields."""
        return {
            "accepted": self.accepted,
            "accept_rule": self.rule,
            "accept_reason": self.reason,
            "accept_test": self.test,
            "accept_dev_difference": self.difference,
            "accept_p_value": self.p_value,
            "accept_dev_n": self.n,
            "accept_scores_from": self.source,
            "candidate_prompt": self.candidate,
        }


UNCHANGED = "unchanged: the method's final prompt is the initial prompt"


def decide(rule: AcceptRule, initial: str, candidate: str, scores: DevScores | None) -> Decision:
    """The rule's decision on the method's choice ``candidate`` against ``initial`` (texts),
    from their paired dev ``scores`` (needed by ``paired`` unless the prompts are equal; for
    ``best`` only reported)."""
    if candidate == initial:
        return Decision(rule, False, UNCHANGED, candidate)
    if scores is None:
        if rule == "paired":
            raise ValueError("the paired rule needs the dev scores of both prompts")
        return Decision(
            rule, True, "accept=best: the method's choice, whatever its margin", candidate
        )
    n = len(scores.initial)
    difference = (sum(scores.candidate) - sum(scores.initial)) / n if n else 0.0
    test, p_value = paired_test(scores.candidate, scores.initial)
    figures = f"{difference:+.4f} on {n} dev examples, one-sided {test} p={p_value:.4g}"
    if rule == "best":
        reason = f"accept=best: the method's choice, whatever its margin ({figures})"
        accepted = True
    elif difference > 0 and p_value < ALPHA:
        reason = f"beats the initial prompt: {figures} < {ALPHA}"
        accepted = True
    elif difference <= 0:
        reason = f"does not beat the initial prompt: {figures}"
        accepted = False
    else:
        reason = f"not significant: {figures} >= {ALPHA}"
        accepted = False
    return Decision(rule, accepted, reason, candidate, test, difference, p_value, n, scores.source)


def accept_final(
    ctx: StepContext,
    rule: AcceptRule,
    initial: Prompt,
    final: dict[str, Any],
    logger: logging.Logger,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``final`` (what ``Method.finalize`` returned) with the rule applied: the decision's
    fields added and, when the choice does not pass, the initial prompt as ``best_prompt``
    (with ``dev_accuracy_final`` and ``best_tokens`` its own), said in one line of the run's
    log and of ``notify`` (stderr, for ``promptopt run``). A ``final`` without a text
    ``best_prompt`` is returned as it is."""
    chosen = final.get("best_prompt")
    if not isinstance(chosen, str):
        return final
    scores = None
    if chosen != initial.text:
        candidate = find_prompt(ctx.history, chosen, initial)
        scores = dev_scores(ctx, initial, candidate, evaluate=rule == "paired")
    decision = decide(rule, initial.text, chosen, scores)
    result = {**final, **decision.fields()}
    if decision.accepted:
        logger.info("acceptance (%s): the final prompt replaces the initial one: %s",
                    rule, decision.reason)  # fmt: skip
        return result
    if chosen != initial.text:
        result.update(_as_initial(final, initial))
        line = (
            f"kept the initial prompt; the method's choice {chosen!r} was rejected "
            f"({decision.reason}); -o accept=best takes it anyway"
        )
    else:
        line = f"kept the initial prompt: {decision.reason}"
    logger.info("%s", line)
    if notify is not None:
        notify(f"promptopt: {line}")
    return result


def _as_initial(final: dict[str, Any], initial: Prompt) -> dict[str, Any]:
    """The fields that describe the returned prompt, for the initial prompt; the candidate's
    dev accuracy is kept as ``candidate_dev_accuracy``, a method's ``best_prompt_X`` figure as
    ``candidate_prompt_X``."""
    fields: dict[str, Any] = {"best_prompt": initial.text}
    if "dev_accuracy_final" in final:
        fields["candidate_dev_accuracy"] = final["dev_accuracy_final"]
        fields["dev_accuracy_final"] = final.get("dev_accuracy_initial")
    if "best_tokens" in final:
        fields["best_tokens"] = list(initial.tokens or ())
    # a method's own figure of its best prompt (``best_prompt_perplexity``) with the initial
    # prompt's twin (``initial_prompt_perplexity``): the twin's value, the candidate's kept
    for key, value in final.items():
        twin = "initial_prompt_" + key.removeprefix("best_prompt_")
        if key.startswith("best_prompt_") and twin in final:
            fields["candidate_prompt_" + key.removeprefix("best_prompt_")] = value
            fields[key] = final[twin]
    return fields


def find_prompt(history: History, text: str, initial: Prompt) -> Prompt:
    """The prompt the run evaluated with this text (its layout and tokens), latest first; a
    prompt the history lacks takes the initial prompt's layout."""
    if text == initial.text:
        return initial
    for entry in reversed(history.entries):
        if entry.prompt.text == text:
            return entry.prompt
    for _, picked in reversed(history.picks):
        if picked.text == text:
            return picked
    return Prompt(text, separator=initial.separator)


def dev_scores(
    ctx: StepContext, initial: Prompt, candidate: Prompt, *, evaluate: bool
) -> DevScores | None:
    """Both prompts' per-example dev scores: from the run's history when it kept them for
    every dev example of both, else (``evaluate``) from evaluating both on the dev split with
    the task model through the evaluation cache (one procedure for both, never mixed);
    None when neither."""
    examples = ctx.examples("dev")
    ids = [example.id for example in examples]
    kept = [_from_history(ctx.history, prompt, ids) for prompt in (initial, candidate)]
    if kept[0] is not None and kept[1] is not None:
        return DevScores(kept[0], kept[1], FROM_HISTORY)
    if not evaluate:
        return None
    first, second = (_measure(ctx, prompt) for prompt in (initial, candidate))
    return DevScores(first, second, FROM_EVALUATION)


def _from_history(history: History, prompt: Prompt, ids: Sequence[str]) -> tuple[float, ...] | None:
    """The latest dev evaluation of ``prompt`` (same text and layout) that kept a score for
    every example of ``ids``, in that order."""
    for entry in reversed(history.entries):
        same = (entry.prompt.text, entry.prompt.separator) == (prompt.text, prompt.separator)
        if same and entry.split == "dev" and all(i in entry.outcomes for i in ids):
            return tuple(entry.outcomes[i] for i in ids)
    return None


def _measure(ctx: StepContext, prompt: Prompt) -> tuple[float, ...]:
    """Per-example dev scores of ``prompt`` by :func:`promptopt.evaluation.evaluate` (the
    generated answer, as ``promptopt eval`` reads it) with the run's reasoning length."""
    from promptopt.evalcache import EvalCache
    from promptopt.evaluation import evaluate

    report = evaluate(
        ctx.backend,
        ctx.task,
        prompt,
        ctx.examples("dev"),
        max_new_tokens=reasoning_tokens(ctx),
        split="dev",
        progress=ctx.progress,
        cache=EvalCache.default(),
    )
    return tuple(outcome.score for outcome in report.outcomes)


def reasoning_tokens(ctx: StepContext) -> int:
    """How long the run reasons: the reasoner's ``max_new_tokens``; without a reasoner, the
    loss extractor's (GPO generates its dev evaluations there); else the default."""
    source = ctx.reasoner if ctx.reasoner is not None else ctx.loss_extractor
    value = getattr(source.options, "max_new_tokens", None)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_REASONING_TOKENS
