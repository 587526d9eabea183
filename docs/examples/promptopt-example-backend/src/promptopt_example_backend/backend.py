"""``ngram``: a backend around the character n-gram model of :mod:`.ngram`.

``--model`` names a UTF-8 text file whose documents are separated by blank lines (nothing: a
small built-in corpus); the model is trained on it when the backend is built. Tokens are
bytes: ``max_new_tokens`` counts bytes, and so does ``usage``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptopt.components import Backend, ComponentOptions
from promptopt.errors import ModelLoadError
from promptopt.progress import Progress
from promptopt.sampling import is_greedy, sample_seed
from pydantic import Field, field_validator

from promptopt_example_backend.ngram import BUILTIN_CORPUS, CharNgram, documents

#: The chat template: the user text goes where ``{user}`` is.
TEMPLATE = "### User:\n{user}\n### Assistant:\n"


class NgramOptions(ComponentOptions):
    """``-o order=4``, ``-o template='Q: {user}\\nA:'``, ``-o seed=3``."""

    #: Bytes of context plus one: 8 reads the last 7 bytes.
    order: int = Field(default=8, ge=1, le=16)
    template: str = TEMPLATE
    #: The sampling seed when ``generate`` is given none.
    seed: int = 0

    @field_validator("template")
    @classmethod
    def _one_user_slot(cls, value: str) -> str:
        if value.count("{user}") != 1:
            raise ValueError("the template must contain {user} exactly once")
        return value


def read_corpus(model: str | None) -> str:
    """The corpus ``model`` names (the built-in one for None); a one-line error if unreadable."""
    if model is None:
        return BUILTIN_CORPUS
    try:
        return Path(model).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"cannot read the ngram corpus {model!r} ({type(exc).__name__})",
            hint="pass --model a UTF-8 text file, or leave it out for the built-in corpus",
        ) from None


class NgramBackend(Backend[NgramOptions]):
    """A character n-gram model trained on a text file; text in, text or log-probabilities out."""

    name = "ngram"
    description = "character n-gram model trained on a text file (pure Python; example plugin)"
    Options = NgramOptions

    def __init__(self, model: str | None, options: ComponentOptions | None = None) -> None:
        super().__init__(model, options)  # validates the options, sets model_ref and usage
        corpus = read_corpus(model)
        self.corpus_sha256 = hashlib.sha256(corpus.encode("utf-8")).hexdigest()
        self.model = CharNgram.train(documents(corpus), self.options.order)
        self._before, self._after = self.options.template.split("{user}")

    @property
    def model_id(self) -> str:
        return str(Path(self.model_ref).expanduser().resolve()) if self.model_ref else "builtin"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        # bytes are all this model knows: no control tokens, so user text is plain already
        return self._before + user + self._after + assistant_prefix

    def generate(
        self,
        texts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        n: int = 1,
    ) -> list[str]:
        greedy = is_greedy(temperature)
        base = self.options.seed if seed is None else seed
        self.usage.record(requests=1)
        outputs: list[str] = []
        with (progress or Progress(enabled=False)).bar(len(texts), "generate (ngram)") as bar:
            for i, text in enumerate(texts):
                history = text.encode("utf-8")
                for j in range(1 if greedy else n):
                    rng = None if greedy else random.Random(sample_seed(base, i, j))
                    out, drawn = self.model.generate(
                        history,
                        max_new_tokens,
                        stop=stop,
                        temperature=temperature,
                        top_p=top_p,
                        rng=rng,
                    )
                    self.usage.record(
                        prompt_tokens=len(history),
                        generated_tokens=len(out.encode("utf-8")),
                        forward_passes=drawn,
                    )
                    outputs += [out] * (n if greedy else 1)  # greedy: n copies of one text
                bar.update(1)
        return outputs

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        history = prefix.encode("utf-8")
        scored = [c.encode("utf-8") for c in continuations]
        self.usage.record(
            requests=1,
            forward_passes=len(scored),
            prompt_tokens=sum(len(history) + len(c) for c in scored),
        )
        return [self.model.logprob(history, c) for c in scored]

    def fingerprint(self) -> dict[str, Any]:
        """Everything the outputs depend on: evaluation caches key on it."""
        return {
            "backend": self.name,
            "corpus_sha256": self.corpus_sha256,
            "order": self.options.order,
            "template": self.options.template,
        }

    @classmethod
    def identify(cls, model: str | None, options: ComponentOptions) -> dict[str, Any]:
        """The corpus's content hash, read without training (result stores key on it)."""
        corpus = read_corpus(model)
        return {
            "model": model or "builtin",
            "corpus_sha256": hashlib.sha256(corpus.encode()).hexdigest(),
        }
