"""The ``opro`` proposer: the meta-prompt from every instruction scored so far (top 20, ascending,
bucketized scores) and 3 exemplar problems, 8 samples from the optimizer model at temperature
1.0, and the instructions parsed from them that pass the guards and were never generated
before."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from promptopt.candidateguards import GuardContext, degenerate
from promptopt.components import ComponentOptions, Proposer, StepContext
from promptopt.types import Candidate, Example, Prompt
from promptopt_opro.loss import SCORE_SPLIT
from promptopt_opro.metaprompt import InstructionPos, Scored, Style, render, shown_pairs, tags
from promptopt_opro.parsing import extract, one_line, rejection


class OproProposerOptions(ComponentOptions):
    """The reference's meta-prompt and sampling settings, and the guards."""

    #: Where the instruction goes (shared with the method and the loss extractor).
    instruction_pos: InstructionPos = "Q_end"
    #: "gpt" (the reference's instruction-tuned optimizers) or "palm" (text-bison).
    meta_prompt: Style = "gpt"
    #: Instructions generated per step (num_generated_instructions_in_each_step).
    samples: int = Field(default=8, ge=1)
    temperature: float = Field(default=1.0, ge=0.0)
    #: Tokens per optimizer sample (the reference's GPT optimizers: 512).
    optimizer_max_tokens: int = Field(default=512, ge=1)
    #: Instructions shown in the meta-prompt (max_num_instructions).
    max_instructions: int = Field(default=20, ge=1)
    #: Buckets the shown accuracies are rounded into (num_score_buckets).
    score_buckets: int = Field(default=100, ge=1)
    #: Instructions scoring below this are not shown (the reference: 0.0 for text-bison
    #: scorers, 0.3 for GPT scorers; 0 shows all).
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    #: Exemplar problems in the meta-prompt (num_few_shot_questions_for_instruction_refinement).
    exemplars: int = Field(default=3, ge=0)
    #: Guard: an output without both tags is dropped (False: the reference's fallback to the
    #: output's start or end).
    require_tags: bool = True
    #: Guard: instructions with fewer words are rejected.
    min_words: int = Field(default=3, ge=1)
    #: Open the optimizer's answer with the start tag and stop at the end tag (or a blank
    #: line), so a small model cannot miss the format; False: the reference's free answer.
    #: The palm style (square brackets) is never prefilled.
    prefill: bool = True


def scored_instructions(ctx: StepContext) -> list[Scored]:
    """Every instruction scored on the scoring split so far, once each, in the order scored
    (the reference's ``old_instructions_and_scores``)."""
    seen: set[str] = set()
    out: list[Scored] = []
    for entry in ctx.history.entries:
        if entry.split != SCORE_SPLIT or entry.prompt.text in seen:
            continue
        seen.add(entry.prompt.text)
        out.append(Scored(entry.prompt.text, entry.accuracy, entry.step))
    return out


def draw_exemplars(examples: Sequence[Example], count: int, ctx: StepContext) -> list[Example]:
    """``count`` examples of the scoring split drawn afresh each step, in split order (the
    reference's "random" criterion: seeded by the step, sorted indices)."""
    picks = sorted(ctx.rng.sample(range(len(examples)), min(count, len(examples))))
    return [examples[i] for i in picks]


class OproProposer(Proposer[OproProposerOptions]):
    """Writes ``samples`` instructions per step with the optimizer model from OPRO's
    meta-prompt."""

    name = "opro"
    description = "optimizer model writes instructions from the top scored ones (OPRO)"
    Options = OproProposerOptions

    def meta_prompt(self, ctx: StepContext) -> tuple[str, list[Scored], list[Example]]:
        """This step's meta-prompt, the instructions it shows and its exemplars."""
        opts = self.options
        shown = shown_pairs(
            scored_instructions(ctx),
            threshold=opts.score_threshold,
            max_instructions=opts.max_instructions,
        )
        exemplars = draw_exemplars(ctx.examples(SCORE_SPLIT), opts.exemplars, ctx)
        text = render(
            shown,
            exemplars,
            pos=opts.instruction_pos,
            style=opts.meta_prompt,
            buckets=opts.score_buckets,
        )
        return text, shown, exemplars

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        opts = self.options
        meta, shown, exemplars = self.meta_prompt(ctx)
        ctx.note("meta_prompt", meta)
        ctx.note("shown", [{"text": s.text, "accuracy": s.accuracy, "step": s.step} for s in shown])
        ctx.note("exemplars", [e.id for e in exemplars])
        optimizer = ctx.optimizer or ctx.backend
        seed = ctx.rng.getrandbits(31)
        start, end = tags(opts.meta_prompt, opts.instruction_pos)
        prefill = opts.prefill and opts.meta_prompt == "gpt"
        with ctx.timed("optimizer"):
            outputs = optimizer.generate(
                [optimizer.chat(meta, assistant_prefix=start if prefill else "")],
                max_new_tokens=opts.optimizer_max_tokens,
                stop=[end, "\n\n"] if prefill else (),
                temperature=opts.temperature,
                seed=seed,
                n=opts.samples,
            )
        if prefill:  # the answer opened with the start tag and ended where the end tag came
            outputs = [f"{start}{text}{end}" for text in outputs]
        guards = GuardContext.of(prompts=[prompt.text], meta_prompt=meta, min_words=opts.min_words)
        before = {text for report in ctx.reports for text in report.notes.get("generated", [])}
        generated: list[str] = []
        rejected: list[dict[str, Any]] = []
        kept: dict[str, Candidate] = {}
        for index, raw in enumerate(outputs):
            parsed = extract(raw, opts.meta_prompt, opts.instruction_pos,
                             require_tags=opts.require_tags)  # fmt: skip
            text = None if parsed.text is None else one_line(parsed.text)
            reason = parsed.reason
            if text is not None:
                generated.append(text)
                reason = rejection(text, min_words=opts.min_words, task_name=ctx.task.name)
                reason = reason or degenerate(text, guards) or ""
                if not reason and (text in before or text in kept):
                    reason = "generated before"  # the reference never scores a repeat again
            if reason or text is None:
                rejected.append({"output": index, "text": text, "reason": reason})
                continue
            candidate = Prompt(text, separator=prompt.separator)
            kept[text] = Candidate(candidate, text, {"output": index})
        ctx.note("optimizer_outputs", [{"seed": seed, "sample": j, "text": t}
                                       for j, t in enumerate(outputs)])  # fmt: skip
        ctx.note("generated", generated)
        ctx.note("rejected", rejected)
        ctx.note("prefill", prefill)
        ctx.note("valid_candidates", len(kept))
        return list(kept.values())
