"""The ``gpo`` proposer: retrieve the update direction from the trajectory, write the meta-prompt,
sample new prompts from the optimizer model, and keep those that pass the guards."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from promptopt.candidateguards import GuardContext, RejectionCounter, degenerate
from promptopt.components import Backend, Proposer, StepContext
from promptopt.types import Candidate, Example, Prompt
from promptopt_gpo.embeddings import (
    Embedder,
    EmbeddingChoice,
    make_embedder,
    resolve_embedding,
)
from promptopt_gpo.metaprompt import Entry, exemplar_answer
from promptopt_gpo.paraphrase import paraphrase_request, steps_without_candidates
from promptopt_gpo.parsing import Leakage, between_tags, clean, rejection
from promptopt_gpo.retrieval import SCORE_SPLIT, Retrieval, accuracy_of, retrieve, trajectory
from promptopt_gpo.schedule import edit_budget, total_steps
from promptopt_gpo.settings import TrajectorySettings
from promptopt_gpo.smallmeta import EXEMPLAR_MAX_WORDS, compose

#: The tag the optimizer's answer starts with (prefilled) and the texts that end it.
START = "<START>"
STOPS = ("<END>", "</END>", "\n\n")


def run_logger(ctx: StepContext) -> logging.Logger:
    """The run directory's log (``run.log``), or this module's logger outside a run."""
    if ctx.run_dir is not None:
        return logging.getLogger(f"promptopt.run.{ctx.run_dir.name}")
    return logging.getLogger(__name__)


def steps_of(options: TrajectorySettings, n_train: int, run_steps: int = 0) -> int:
    """T: the run's step count (``run_steps``, the method's, when known), else the ``steps``
    option, else epochs x steps per epoch from the train size."""
    return run_steps or options.steps or total_steps(n_train, options.epochs, options.train_batch)


class GpoProposerOptions(TrajectorySettings):
    """Retrieval, sampling and the guards, with the trajectory settings shared with the method."""

    #: Trajectory entries shown: the current prompt and the k-1 most similar earlier ones.
    k: int = Field(default=3, ge=1)
    retrieval: Retrieval = "relevance"
    #: Sentence embeddings for relevance: "auto" = minilm when installed, else tfidf.
    embedding: EmbeddingChoice = "auto"
    samples: int = Field(default=8, ge=1)
    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    optimizer_max_tokens: int = Field(default=512, ge=1)
    #: Guard: an output without both <START> and <END> is dropped and resampled (False:
    #: the reference's fallback to the output's start/end).
    require_tags: bool = True
    #: Extra sampling rounds (each with its own seed) for outputs without tags, or when no
    #: output of the step survived the guards.
    retries: int = Field(default=2, ge=0)
    #: Guard: longer candidates are rejected.
    max_words: int = Field(default=100, ge=1)
    #: Guard: reject candidates containing an exemplar's answer ("open": only answers that
    #: are not a closed option, "all", "off").
    leakage: Leakage = "open"
    #: Optional guard: reject candidates that change more words than the budget N_t.
    enforce_budget: bool = False
    #: Generate the answer from an assistant turn prefilled with <START>, stopping at <END>
    #: or a blank line, so the tag format cannot fail (False: the reference's free answer).
    prefill: bool = True
    #: Guard: candidates with fewer words are rejected.
    min_words: int = Field(default=3, ge=1)
    #: After this many steps in a row without a valid candidate, ask for a variation of the
    #: best prompt so far instead (0: never).
    paraphrase_after: int = Field(default=3, ge=0)
    #: ``meta_prompt=small``: a shorter exemplar question is shown, a longer one is not.
    exemplar_max_words: int = Field(default=EXEMPLAR_MAX_WORDS, ge=1)


class GpoProposer(Proposer[GpoProposerOptions]):
    """Writes ``samples`` new prompts per step with the optimizer model from GPO's meta-prompt."""

    name = "gpo"
    description = "optimizer model rewrites the prompt from its scored trajectory (GPO)"
    Options = GpoProposerOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        #: The embedding this run uses (resolved once, checkpointed so a resume keeps it).
        self.embedding: str | None = None
        self._embedder: Embedder | None = None

    # ----------------------------------------------------------------- embeddings

    def _resolve_embedding(self, ctx: StepContext) -> str:
        """The embedder's description; chosen once per run (a resumed run keeps its choice)
        and logged each time a process sets it up."""
        if self.embedding is None:
            self.embedding = resolve_embedding(self.options.embedding)
        if self._embedder is None:
            self._embedder = make_embedder(self.embedding)
            run_logger(ctx).info("gpo retrieval embeddings: %s", self._embedder.describe())
        return self._embedder.describe()

    def _similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        assert self._embedder is not None
        return self._embedder.similarities(query, texts)

    # ----------------------------------------------------------------- proposing

    def meta_prompt(
        self, ctx: StepContext, prompt: Prompt
    ) -> tuple[str, dict[str, Any], list[Example]]:
        """This step's meta-prompt, the facts behind it (budget, entries shown) and the
        exemplars it shows."""
        opts = self.options
        points = trajectory(ctx.history)
        t, total, budget = self._schedule(ctx, len(points))
        embedding = "none (recency retrieval)"
        if opts.retrieval == "relevance":
            embedding = self._resolve_embedding(ctx)
        with ctx.timed("retrieval"):
            shown, sims = retrieve(
                points, prompt, opts.k, method=opts.retrieval, similarities=self._similarities
            )
        current = ctx.history.lookup(prompt, split=SCORE_SPLIT)
        text, exemplars = compose(
            opts.meta_prompt,
            [Entry(p.prompt.text, p.accuracy) for p in shown],
            Entry(prompt.text, accuracy_of(current) if current else None),
            ctx.train,
            count=opts.exemplars,
            seed=ctx.seed,
            budget=budget,
            scale=opts.score_scale,
            max_words=opts.exemplar_max_words,
        )
        facts = {
            "t": t,
            "T": total,
            "budget": budget,
            "embedding": embedding,
            "exemplars": [e.id for e in exemplars],
            "shown": [
                {"prompt": p.prompt.text, "accuracy": p.accuracy, "step": p.step, "similarity": s}
                for p, s in zip(shown, sims, strict=True)
            ],
        }
        return text, facts, exemplars

    def _schedule(self, ctx: StepContext, n_points: int) -> tuple[int, int, int]:
        """(t, T, N_t): the trajectory length, the run's step count, the word budget."""
        opts = self.options
        total = steps_of(opts, len(ctx.train), ctx.steps)
        t = max(1, n_points)
        return t, total, edit_budget(t, total, opts.budget_max, opts.budget_min)

    def _request(
        self, ctx: StepContext, prompt: Prompt
    ) -> tuple[str, dict[str, Any], list[Example], list[str]]:
        """This step's request to the optimizer: GPO's meta-prompt, or after
        ``paraphrase_after`` steps in a row without a valid candidate a request for a
        variation of the best prompt so far; with its facts, exemplars and the prompts shown."""
        streak = steps_without_candidates(ctx.reports)
        if not self.options.paraphrase_after or streak < self.options.paraphrase_after:
            meta, facts, exemplars = self.meta_prompt(ctx, prompt)
            return meta, facts, exemplars, [s["prompt"] for s in facts["shown"]]
        best = ctx.history.best(1, split=SCORE_SPLIT)
        source = best[0].prompt.text if best else prompt.text
        t, total, budget = self._schedule(ctx, len(trajectory(ctx.history)))
        facts = {"t": t, "T": total, "budget": budget}
        facts["paraphrased"] = {"prompt": source, "steps_without_candidates": streak}
        run_logger(ctx).info(
            "gpo: %d steps without a valid candidate: asking for a variation of %r",
            streak, source,
        )  # fmt: skip
        return paraphrase_request(source), facts, [], [source]

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        opts = self.options
        meta, facts, exemplars, shown = self._request(ctx, prompt)
        for key, value in facts.items():
            ctx.note(key, value)
        ctx.note("meta_prompt", meta)
        guards = GuardContext.of(
            prompts=[prompt.text, *shown],
            meta_prompt=meta,
            questions=[e.question for e in ctx.train],
            labels=_labels(ctx.train),
            min_words=opts.min_words,
        )
        optimizer = ctx.optimizer or ctx.backend
        prefix = START if opts.prefill else ""
        chat = optimizer.chat(meta, prefix) if prefix else optimizer.chat(meta)
        outputs: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        kept: dict[str, Candidate] = {}
        counter = RejectionCounter()
        tagged = valid = 0
        for round_ in range(opts.retries + 1):
            if tagged < opts.samples:
                need = opts.samples - tagged
            elif not kept:
                need = opts.samples  # every output failed a guard: sample a fresh set
            else:
                break
            seed = ctx.rng.getrandbits(31)
            with ctx.timed("optimizer"):
                texts = self._sample(optimizer, chat, need, seed)
            for j, raw in enumerate(texts):
                index = len(outputs)
                outputs.append({"round": round_, "seed": seed, "sample": j, "text": raw})
                text, reason = self._screen(raw, prompt, exemplars, facts["budget"], guards)
                if text is not None:  # both tags found: counts toward this step's samples
                    tagged += 1
                if text is not None and not reason:
                    valid += 1  # passed every guard (a repeat within the step is only dropped)
                    if text in kept:
                        reason = f"repeats output {kept[text].meta['output']} of this step"
                if reason or text is None:
                    rejected.append({"output": index, "text": text, "reason": reason})
                    counter.add(reason)
                    continue
                candidate = Prompt(text, separator=prompt.separator)
                repeat = ctx.history.lookup(candidate, split=SCORE_SPLIT) is not None
                kept[text] = Candidate(candidate, text, {"output": index, "repeat": repeat})
        candidates = list(kept.values())
        ctx.note("prefill", prefix)
        ctx.note("optimizer_outputs", outputs)
        ctx.note("valid_candidates", valid)
        ctx.note("sampling_rounds", 1 + max((o["round"] for o in outputs), default=0))
        ctx.note("parsed", [c.prompt.text for c in candidates])
        ctx.note("rejected", rejected)
        ctx.note("rejections", counter.as_dict())
        ctx.note("repeats", [c.prompt.text for c in candidates if c.meta["repeat"]])
        if not candidates:
            ctx.note(
                "no_candidate_reason",
                f"no valid candidate among {len(outputs)} optimizer outputs ({counter.summary()})",
            )
        return candidates

    def _screen(
        self,
        raw: str,
        prompt: Prompt,
        exemplars: Sequence[Example],
        budget: int,
        guards: GuardContext,
    ) -> tuple[str | None, str]:
        """One output through the guards: (cleaned text or None without tags, rejection
        reason or ""). With ``prefill`` the output continues the prefilled <START>: its text
        up to <END> (or its end: generation stopped there) is the candidate."""
        opts = self.options
        if opts.prefill:
            parsed = between_tags(START + raw, require_tags=False)
        else:
            parsed = between_tags(raw, require_tags=opts.require_tags)
        if parsed.text is None:
            return None, parsed.reason
        text = clean(parsed.text)
        reason = rejection(
            text,
            exemplars,
            max_words=opts.max_words,
            leakage=opts.leakage,
            current=prompt.text if opts.enforce_budget else None,
            budget=budget if opts.enforce_budget else None,
        )
        return text, reason or degenerate(text, guards, raw=parsed.text) or ""

    def _sample(self, optimizer: Backend, chat: str, n: int, seed: int) -> list[str]:
        opts = self.options
        return optimizer.generate(
            [chat],
            max_new_tokens=opts.optimizer_max_tokens,
            stop=STOPS if opts.prefill else (),
            temperature=opts.temperature,
            top_p=opts.top_p,
            seed=seed,
            n=n,
        )

    # ----------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, Any]:
        return {"embedding": self.embedding}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.embedding = state.get("embedding")
        self._embedder = None


def _labels(train: Sequence[Example]) -> set[str]:
    """The task's answer labels as the training examples spell them ("B", "(B)", "Yes")."""
    labels: set[str] = set()
    for example in train:
        labels.update({example.answer, exemplar_answer(example), *example.options})
    return labels
