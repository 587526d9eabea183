"""The ``greater`` loss extractor: the extractor and gold answer appended after the reasoning;
candidates scored by the gradient of the answer loss w.r.t. a one-hot at the edited position,
prompts scored exactly by the training error rate (1 - the mean score under the task's metric)
plus a small fluency term. ``option_error``/``option_ce`` take the exact check's argmax and
cross-entropy over the task's valid answers only (:mod:`promptopt_greater.answerset`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field

from promptopt.components import ComponentOptions, LossExtractor, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.types import Candidate, Chain, Example, Prompt, PromptLoss, Split
from promptopt_greater.layout import Row, build_context, build_rows, prompt_tokens
from promptopt_greater.scoring import ChainScorer
from promptopt_greater.whitebox import WhiteBox, eval_mode, prefix_cache, white_box


def chain_rows(
    ctx: StepContext,
    wb: WhiteBox,
    prompt: Prompt,
    examples: Sequence[Example],
    chains: Sequence[Chain],
    *,
    valid_answers: bool = False,
) -> list[Row]:
    """Rows for ``examples`` under ``prompt`` with the reasoning of ``chains`` (their exact ids
    when the reasoner kept them, else the chain text encoded); with ``valid_answers`` each row
    names the valid tokens of its answer slots (``Row.allowed``)."""
    by_id = {chain.example_id: chain for chain in chains}
    contexts, reasonings = [], []
    for example in examples:
        chain = by_id[example.id]
        ids = list(chain.ids) if chain.ids is not None else wb.encode(chain.reasoning)
        contexts.append(build_context(wb, ctx.task, example, prompt))
        reasonings.append(ids)
    rows = build_rows(wb, ctx.task, examples, contexts, reasonings)
    if valid_answers:
        from promptopt_greater.answerset import allowed_tokens

        rows = [
            dataclasses.replace(row, allowed=allowed_tokens(wb, ctx.task, example, row.target))
            for row, example in zip(rows, examples, strict=True)
        ]
    limit = wb.context_length
    longest = max((len(row) for row in rows), default=0)
    if limit is not None and longest > limit:
        raise PromptoptError(
            f"a training row (question, prompt, reasoning, extractor, answer) has {longest} "
            f"tokens, more than the {limit}-token context of {wb.model_id}",
            hint="lower max_new_tokens, or use shorter questions or a longer-context model",
        )
    return rows


def exact_check_score(task: Task, example: Example, reasoning: str, correct: bool) -> float:
    """One row's score under the task's metric. The exact check knows only whether the gold
    answer is the greedy continuation after the extractor: then the task scores the gold
    answer, else an answer it could not read (0 for every built-in metric but ``contains``,
    which still looks for the gold answer in the reasoning)."""
    from promptopt.metrics import model_output, task_score

    if correct:
        output = model_output(reasoning, task.continuation(example.answer))
        return task_score(task, example.answer, output, example)
    return task_score(task, None, reasoning, example)


class GreaterLossOptions(ComponentOptions):
    """The gradient's temperature and fluency weight, the exact check's loss and where it runs."""

    temperature: float = Field(default=0.2, gt=0)
    fluency_weight: float = Field(default=0.2, ge=0)
    eval_fluency_weight: float = Field(default=0.02, ge=0)
    #: What the exact check ranks prompts by: the training error rate (the reference), the
    #: mean cross-entropy of the gold answer tokens, or either over the task's valid answers
    #: only (``option_error``, ``option_ce``: closed and number tasks; see ``answerset``).
    exact_loss: Literal["error_rate", "answer_ce", "option_error", "option_ce"] = "error_rate"
    #: Where the exact check runs: ``auto`` = in the reasoner's runtime when it can (a
    #: :class:`~promptopt_greater.scoring.ChainScorer`; llama.cpp scores only the extractor and
    #: answer after the KV its chains left), else torch.
    exact_check: Literal["auto", "torch"] = "auto"
    batch_size: int = Field(default=8, ge=1)
    prefix_cache: bool = True
    reference_mode: bool = False


class GreaterLossExtractor(LossExtractor[GreaterLossOptions]):
    """One-hot gradient through the reasoning (candidate scores) and exact error rate (evaluate)."""

    name = "greater"
    description = "answer CE/0.2 + fluency gradient over a candidate one-hot; exact error rate"
    Options = GreaterLossOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        from promptopt_greater.batching import BatchSize

        size = 1 if self.options.reference_mode else self.options.batch_size
        self.grad_batch = BatchSize(size)
        self.eval_batch = BatchSize(size)

    def _cache(self, wb: WhiteBox) -> Any:
        from promptopt_greater.prefix import supports_prefix_cache

        if (
            self.options.prefix_cache
            and not self.options.reference_mode
            and supports_prefix_cache(wb.model)
        ):
            return prefix_cache(wb)
        return None

    # ----------------------------------------------------------------- gradient scores

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        """L2-normalized gradient entry of each candidate's token (lower is better), through
        the reasoning of ``prompt`` on the training examples."""
        self._check_answers(ctx, ctx.train)
        wb = white_box(ctx.backend)
        pos = prompt.position
        current = prompt_tokens(wb, prompt)[pos]
        ids = [candidate_token(c, pos) for c in candidates]
        onehot_ids = ids if current in ids else [*ids, current]
        chains = ctx.chains(prompt)
        with ctx.timed("gradient"):
            rows = chain_rows(ctx, wb, prompt, ctx.train, chains)
            with ctx.progress.bar(len(rows), "gradient", unit="example") as bar:
                grad, total = self.gradient(
                    wb, rows, pos, onehot_ids, onehot_ids.index(current), on_done=bar.update
                )
        norm = float(grad.norm())
        if norm > 0:
            grad = grad / norm
        ctx.note("gradient_loss", total / max(len(rows), 1))
        return [float(g) for g in grad[: len(ids)]]

    def gradient(
        self,
        wb: WhiteBox,
        rows: Sequence[Row],
        position: int,
        token_ids: Sequence[int],
        current: int,
        on_done: Callable[[int], object] | None = None,
    ) -> tuple[Any, float]:
        """Summed one-hot gradient ``[C]`` over ``rows`` (batched backward) and the summed loss."""
        from promptopt_greater.batching import run_batched
        from promptopt_greater.tensors import onehot_gradient

        cache = self._cache(wb)
        embed = wb.input_embeddings
        with eval_mode(wb.model):

            def run(chunk: Sequence[Row]) -> list[tuple[Any, float]]:
                wb.usage.record(
                    forward_passes=1, backward_passes=1, prompt_tokens=sum(map(len, chunk))
                )
                return [
                    onehot_gradient(
                        wb.model,
                        embed,
                        chunk,
                        position=position,
                        candidates=token_ids,
                        current=current,
                        temperature=self.options.temperature,
                        fluency_weight=self.options.fluency_weight,
                        pad_id=wb.pad_id,
                        device=wb.device,
                        cache=cache,
                    )
                ]

            parts = run_batched(run, rows, self.grad_batch, on_done)
        grad = sum((g for g, _ in parts[1:]), parts[0][0])
        return grad, sum(t for _, t in parts)

    # ----------------------------------------------------------------- exact evaluation

    def evaluate(
        self, ctx: StepContext, prompts: Sequence[Prompt], *, split: Split = "train"
    ) -> list[PromptLoss]:
        """Regenerate reasoning for every prompt on the examples of ``split`` (one batched
        generation), append extractor and gold answer, one forward: error rate (or the
        ``exact_loss`` chosen) + ``eval_fluency_weight`` x prompt NLL. Under ``option_*`` the
        error rate reported is the one over valid answers (the full-vocabulary one is kept in
        ``details["vocab_error_rate"]``)."""
        wb = white_box(ctx.backend)
        examples = ctx.examples(split)
        options = self._check_answers(ctx, examples)
        with ctx.timed("reasoning"):
            all_chains = ctx.reason(prompts, examples)
        with ctx.timed("exact_check"):
            rows = [
                row
                for prompt, chains in zip(prompts, all_chains, strict=True)
                for row in chain_rows(ctx, wb, prompt, examples, chains, valid_answers=options)
            ]
            # llama.cpp scores only the gold tokens, so valid-answer scores come from torch
            scores = None if options else self._engine_scores(ctx, wb, rows)
            if scores is None:
                with ctx.progress.bar(len(rows), "exact check", unit="row") as bar:
                    scores = self.exact(wb, rows, on_done=bar.update)
        losses = []
        n = len(examples)
        for i, prompt in enumerate(prompts):
            part = scores[i * n : (i + 1) * n]
            reasoning = {chain.example_id: chain.reasoning for chain in all_chains[i]}
            graded = [
                exact_check_score(ctx.task, ex, reasoning[ex.id], s.correct)
                for ex, s in zip(examples, part, strict=True)
            ]
            error = 1.0 - sum(graded) / max(n, 1)
            nll = sum(s.prompt_nll for s in part) / max(n, 1)
            ce = sum(s.answer_ce for s in part) / max(n, 1)
            details = {"prompt_nll": nll, "answer_ce": ce, "examples": float(n)}
            # the reference ranks by error rate; answer_ce ranks by the gold answer's
            # cross-entropy, a smoother signal when few training examples make rates coarse
            primary = error if self.options.exact_loss == "error_rate" else ce
            if options:
                # the same two over the valid answers: a small model rarely puts the gold
                # answer first in the whole vocabulary, but often ranks it above the others
                option_graded = [
                    exact_check_score(ctx.task, ex, reasoning[ex.id], bool(s.option_correct))
                    for ex, s in zip(examples, part, strict=True)
                ]
                option_ce = sum(float(s.option_ce or 0.0) for s in part) / max(n, 1)
                details["vocab_error_rate"] = error
                details["option_ce"] = option_ce
                error = 1.0 - sum(option_graded) / max(n, 1)
                primary = error if self.options.exact_loss == "option_error" else option_ce
            losses.append(
                PromptLoss(
                    prompt=prompt,
                    loss=primary + self.options.eval_fluency_weight * nll,
                    error_rate=error,
                    details=details,
                    split=split,
                    outcomes={ex.id: score for ex, score in zip(examples, graded, strict=True)},
                )
            )
        return losses

    def _check_answers(self, ctx: StepContext, examples: Sequence[Example]) -> bool:
        """Whether the exact check runs over valid answers; a one-line error when the task
        has none (checked before any reasoning is generated)."""
        if self.options.exact_loss not in ("option_error", "option_ce"):
            return False
        from promptopt_greater.answerset import check_closed

        check_closed(ctx.task, examples, self.options.exact_loss)
        return True

    def _engine_scores(self, ctx: StepContext, wb: WhiteBox, rows: Sequence[Row]) -> Any:
        """The exact check by the reasoner that just produced the chains, when it declares it
        can score them (a :class:`ChainScorer`; llama.cpp: only the tokens after what its KV
        holds, the prompt NLL from the logits of its prefill); None: score in torch. Prompt
        NLLs the reasoner lacks (chains reused from before it scored prompts) come from one
        torch forward."""
        if self.options.exact_check == "torch" or self.options.reference_mode:
            return None
        scorer = ctx.reasoner
        if not isinstance(scorer, ChainScorer):
            return None
        answers = scorer.score_rows(wb, rows)
        if answers is None:
            return None
        import dataclasses

        from promptopt_greater.tensors import prompt_nlls

        nlls = scorer.prompt_nlls(wb, rows)
        missing = [i for i, nll in enumerate(nlls) if nll is None]
        ctx.count("prompt_nlls_from_generator", len(rows) - len(missing))
        if missing:
            contexts = [rows[i].context for i in missing]
            wb.usage.record(forward_passes=1, prompt_tokens=sum(len(c.prompt) for c in contexts))
            with eval_mode(wb.model):
                computed = prompt_nlls(
                    wb.model, contexts, pad_id=wb.pad_id, device=wb.device, cache=self._cache(wb)
                )
            for i, nll in zip(missing, computed, strict=True):
                nlls[i] = nll
        return [
            dataclasses.replace(a, prompt_nll=float(nll or 0.0))
            for a, nll in zip(answers, nlls, strict=True)
        ]

    def exact(
        self, wb: WhiteBox, rows: Sequence[Row], on_done: Callable[[int], object] | None = None
    ) -> list[Any]:
        """:class:`~promptopt_greater.tensors.ExactScore` per row, batched."""
        from promptopt_greater.batching import run_batched
        from promptopt_greater.tensors import exact_scores

        cache = self._cache(wb)

        def run(chunk: Sequence[Row]) -> list[Any]:
            wb.usage.record(forward_passes=1, prompt_tokens=sum(map(len, chunk)))
            return exact_scores(wb.model, chunk, pad_id=wb.pad_id, device=wb.device, cache=cache)

        with eval_mode(wb.model):
            return run_batched(run, rows, self.eval_batch, on_done)


def candidate_token(candidate: Candidate, position: int) -> int:
    """The token a candidate places at ``position``."""
    token = candidate.meta.get("token_id")
    if token is None:
        tokens = candidate.prompt.tokens
        if tokens is None:
            raise ValueError(f"candidate {candidate.label!r} has no token ids")
        token = tokens[position]
    return int(token)
