"""Options the ``gpo`` method and its proposer both need (the method to count steps and show the
first meta-prompt in ``--dry-run``, the proposer to write every meta-prompt): declared once here,
routed to both by the method's ``shared_options``."""

from __future__ import annotations

from pydantic import Field

from promptopt.components import ComponentOptions
from promptopt_gpo.metaprompt import ScoreScale
from promptopt_gpo.schedule import EPOCHS, TRAIN_BATCH
from promptopt_gpo.smallmeta import MetaPromptKind

#: The keys of :class:`TrajectorySettings`, which a bare ``-o key=value`` gives to both.
SHARED_KEYS = (
    "steps",
    "epochs",
    "train_batch",
    "exemplars",
    "budget_max",
    "budget_min",
    "score_scale",
    "meta_prompt",
)


class TrajectorySettings(ComponentOptions):
    """Step count, edit budget, exemplars and score scale (reference values by default)."""

    #: None: T = epochs x steps per epoch, from the train size (as RUCAIBox/GPO counts them).
    steps: int | None = Field(default=None, ge=1)
    epochs: int = Field(default=EPOCHS, ge=1)
    #: Training examples per step when counting steps per epoch.
    train_batch: int = Field(default=TRAIN_BATCH, ge=1)
    exemplars: int = Field(default=3, ge=0)
    #: Cosine edit budget in words: budget_max at the start, budget_min at the end.
    budget_max: int = Field(default=50, ge=1)
    budget_min: int = Field(default=10, ge=0)
    #: How scores appear in the meta-prompt: "percent" (0-100, as its text says) or
    #: "fraction" (the raw accuracy the reference's code prints).
    score_scale: ScoreScale = "percent"
    #: "reference": the authors' meta-prompt; "small": a short one for small optimizer models
    #: (at most one short exemplar, a worked format example, the best prompt last).
    meta_prompt: MetaPromptKind = "reference"
