"""The ``hf`` backend: a causal LM run with transformers, white box (logits, embeddings, grads).

Inputs are tokenized without the tokenizer's automatic special tokens: texts come from
:meth:`HFBackend.chat`, whose template already writes them. Only when a tokenizer normally
starts every sequence with BOS and the text does not, BOS is put in front (base models with a
plain completion template). Only the template's own markup becomes control tokens: control-token
text inside prompts, questions or model output is tokenized as plain text.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from promptopt.chattext import PLAIN_TEMPLATE, check_plain_template
from promptopt.components import ComponentOptions
from promptopt.cpus import usable_cpus
from promptopt.errors import PromptoptError
from promptopt.sampling import is_greedy, sample_seed
from promptopt.stops import cut_at_stop
from promptopt.whitebox import WhiteBoxBackend
from promptopt_hf.resolve import ModelSource, resolve_model
from promptopt_hf.templates import HFTemplates

if TYPE_CHECKING:
    import torch

    from promptopt.chattext import TemplateMarkup
    from promptopt.progress import Progress

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: Lengths at or above this are transformers' "no limit set" placeholders (int(1e30), ...).
_UNSET_LENGTH = 10_000_000


class HFOptions(ComponentOptions):
    """Options of the ``hf`` backend."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    batch_size: int = Field(default=8, ge=1)
    seed: int = 0
    #: CPU threads for torch; None = every core this process may use (a run owns the machine).
    threads: int | None = Field(default=None, ge=1)
    #: "auto": the tokenizer's chat template, or ``plain_template`` when it has none.
    template: Literal["auto", "chat", "plain"] = "auto"
    plain_template: str = PLAIN_TEMPLATE

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("plain_template")
    @classmethod
    def _check_plain_template(cls, value: str) -> str:
        return check_plain_template(value)


class HFBackend(WhiteBoxBackend[HFOptions]):
    """Generation and scoring with a transformers causal LM; the white-box contract
    (:class:`~promptopt.whitebox.WhiteBoxBackend`) for gradient methods."""

    name = "hf"
    description = "transformers causal LM (white box; hub id, folder, .gguf or embedded SmolLM2)"
    Options = HFOptions
    loads_gguf: ClassVar[bool] = True

    def __init__(self, model: str | None = None, options: ComponentOptions | None = None) -> None:
        super().__init__(model, options)
        import torch

        from promptopt_hf.loading import load_model, resolve_device, resolve_dtype

        opts = self.options
        torch.manual_seed(opts.seed)
        torch.set_num_threads(opts.threads or usable_cpus())
        self.source: ModelSource = resolve_model(model)
        self.device: torch.device = resolve_device(opts.device)
        self.dtype: torch.dtype = resolve_dtype(opts.dtype, self.device)
        self.model, self.tokenizer = load_model(
            self.source,
            dtype=self.dtype,
            device=self.device,
            trust_remote_code=opts.trust_remote_code,
        )
        self.batch_size = opts.batch_size
        self._eos: frozenset[int] = frozenset(self._eos_ids())
        self._pad: int = self._pad_id()
        self._bos_prefix: int | None = self._default_bos()
        self.templates = HFTemplates(
            self.tokenizer,
            mode=opts.template,
            plain_template=opts.plain_template,
            model_id=self.model_id,
        )
        if self.templates.chat_template is not None:
            where = self.source.gguf.name if self.source.gguf is not None else self.model_id
            self.templates.check(where)
        self._fingerprint: dict[str, Any] | None = None
        self.fingerprint()  # now: it must describe the files loaded, not what replaces them later

    # ------------------------------------------------------------------ identity

    @property
    def parallel_width(self) -> int:
        """Rows per forward pass: ``batch_size`` (halved after a GPU out-of-memory)."""
        return self.batch_size

    @property
    def model_id(self) -> str:
        return self.source.model_id

    @property
    def embedding_matrix(self) -> torch.Tensor:
        """The input embedding weights, [vocab, hidden] (no gradient)."""
        return self.model.get_input_embeddings().weight

    def weights_file(self) -> Path | None:
        return self.source.gguf

    def weights_folder(self) -> Path | None:
        return self.source.folder

    @property
    def eos_ids(self) -> frozenset[int]:
        return self._eos

    @property
    def pad_id(self) -> int:
        return self._pad

    @property
    def special_ids(self) -> frozenset[int]:
        ids = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
            value = getattr(self.tokenizer, name, None)
            if isinstance(value, int):
                ids.add(value)
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        ids.update(int(i) for i, tok in added.items() if getattr(tok, "special", True))
        return frozenset(ids)

    @property
    def context_length(self) -> int | None:
        """The most tokens the model reads at once: the smaller of the config's
        ``max_position_embeddings`` and the tokenizer's ``model_max_length``, counting only the
        values that are set (transformers uses a huge number for "unset"); None if neither is."""
        values = [
            getattr(getattr(self.model, "config", None), "max_position_embeddings", None),
            getattr(self.tokenizer, "model_max_length", None),
        ]
        real = [int(v) for v in values if isinstance(v, int) and 0 < v < _UNSET_LENGTH]
        return min(real) if real else None

    def check_fits(self, n_tokens: int, what: str, *, room: int = 0) -> None:
        """A one-line error unless ``n_tokens`` plus ``room`` more fit in
        :attr:`context_length`; called before any generation or scoring, so an over-long
        prompt fails at once instead of producing output from a truncated view."""
        limit = self.context_length
        if limit is not None and n_tokens + room > limit:
            raise PromptoptError(
                f"{what} has {n_tokens} tokens, too many for the {limit}-token context of "
                f"{self.model_id}",
                hint="shorten the prompt (or the task's questions), or use a model with a longer "
                "context",
            )

    def fingerprint(self) -> dict[str, Any]:
        """Model id, a content hash of the GGUF source (or a cheap signature of the weight
        files), dtype and the prompt template."""
        if self._fingerprint is None:
            from promptopt.filehash import file_sha256
            from promptopt_hf.convert import file_signature

            digest = hashlib.sha256()
            if self.source.gguf is not None:  # a conversion is a function of its source file
                digest.update(file_sha256(self.source.gguf).encode())
            elif self.source.files:
                for path in self.source.files:
                    digest.update(file_signature(path).encode())
            else:  # hub model: the resolved commit is the best we have
                digest.update(str(getattr(self.model.config, "_commit_hash", "")).encode())
            chat_template = self.templates.chat_template
            template = chat_template if chat_template is not None else self.templates.plain_template
            self._fingerprint = {
                "backend": self.name,
                "model": self.model_id,
                "weights": digest.hexdigest()[:16],
                "dtype": str(self.dtype).removeprefix("torch."),
                "template": hashlib.sha256(str(template).encode()).hexdigest()[:16],
                "template_kind": "chat" if chat_template is not None else "plain",
                "decoding": "greedy",
            }
        return dict(self._fingerprint)

    def close(self) -> None:
        import gc

        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ text <-> ids

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text`` (no special tokens added unless asked). Only the chat
        template's own markup is parsed into control tokens; control-token text anywhere else
        (``<|im_end|>`` in a question, a prompt or model output) is plain text."""
        pieces = self.markup.segments(text)
        if len(pieces) == 1 and pieces[0][1]:
            return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))
        ids: list[int] = []
        for piece, markup in pieces:
            ids += self.tokenizer.encode(
                piece, add_special_tokens=False, split_special_tokens=not markup
            )
        if add_special_tokens and self._bos_prefix is not None:
            ids.insert(0, self._bos_prefix)
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def encode_input(self, text: str) -> list[int]:
        """Ids of a full model input: the text as written, plus BOS in front when the tokenizer
        normally adds one and the text lacks it."""
        ids = self.encode(text)
        if self._bos_prefix is not None and (not ids or ids[0] != self._bos_prefix):
            ids.insert(0, self._bos_prefix)
        return ids

    # ------------------------------------------------------------------ templates

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        """One user turn through the chat template with the generation prompt (or through
        ``plain_template`` for models without one), then ``assistant_prefix``, the start of the
        answer that generation continues. User text and prefix stay plain text when tokenized,
        control-token spellings included."""
        return self.templates.chat(user) + assistant_prefix

    @property
    def markup(self) -> TemplateMarkup:
        """The template's own text around the user content, and the control-token texts of
        the tokenizer (see :mod:`promptopt.chattext`)."""
        return self.templates.markup

    def chat_parts(self, user: str | None = None) -> tuple[str, str]:
        """(text before, text after) the user content in :meth:`chat`'s output, so token
        methods can splice ids: ``chat(u) == before + u + after`` (``u.strip()`` for templates
        that trim the content, as Llama 3's does)."""
        return self.templates.parts(user)

    # ------------------------------------------------------------------ generation

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
        """Continuations (greedy, or sampled with per-sample seeds), batched by length; cut at
        EOS and before any stop string. ``result[i * n + j]`` is sample ``j`` of text ``i``."""
        inputs = [text for text in texts for _ in range(n)]
        seeds: list[int] = []
        if not is_greedy(temperature):
            base = self.options.seed if seed is None else seed
            seeds = [sample_seed(base, i, j) for i in range(len(texts)) for j in range(n)]
        outputs = self._generate(inputs, max_new_tokens, stop, progress, temperature, top_p, seeds)
        return [cut_at_stop(self.decode(ids, skip_special_tokens=True), stop) for ids in outputs]

    def generate_ids(
        self,
        inputs: Sequence[str | Sequence[int]],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[list[int]]:
        """Greedy new token ids for each input (a text from :meth:`chat`, or its token ids).

        EOS is not included; with ``stop``, a sequence ends with the token that completed a
        stop string. Inputs are sorted by length and left-padded in batches of ``batch_size``;
        results come back in input order and equal unbatched generation."""
        return self._generate(inputs, max_new_tokens, stop, progress, 0.0, 1.0, [])

    def _generate(
        self,
        inputs: Sequence[str | Sequence[int]],
        max_new_tokens: int,
        stop: Sequence[str],
        progress: Progress | None,
        temperature: float,
        top_p: float,
        seeds: list[int],
    ) -> list[list[int]]:
        rows = [self.encode_input(x) if isinstance(x, str) else list(x) for x in inputs]
        if rows:
            self.check_fits(max(len(r) for r in rows), "the model input", room=1)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]), reverse=True)
        results: list[list[int]] = [[] for _ in rows]
        stops = [s for s in stop if s]
        check = self._stop_check(stops) if stops else None
        self.usage.record(requests=1, prompt_tokens=sum(len(r) for r in rows))
        with _bar(progress, len(rows)) as bar:
            start = 0
            while start < len(order):
                chunk = order[start : start + self.batch_size]
                chunk_seeds = tuple(seeds[i] for i in chunk) if seeds else ()
                new = self._generate_batch(
                    [rows[i] for i in chunk], max_new_tokens, check, temperature, top_p, chunk_seeds
                )
                if new is None:  # out of GPU memory: batch_size was halved, retry
                    continue
                for i, ids in zip(chunk, new, strict=True):
                    results[i] = ids
                bar.update(len(chunk))
                start += len(chunk)
        self.usage.record(generated_tokens=sum(len(r) for r in results))
        return results

    def _generate_batch(
        self,
        rows: list[list[int]],
        max_new_tokens: int,
        check: Any,
        temperature: float,
        top_p: float,
        seeds: tuple[int, ...],
    ) -> list[list[int]] | None:
        """One batch; on CUDA out-of-memory halve ``batch_size`` and return None."""
        import torch

        from promptopt_hf.generation import Sampler, greedy_batch

        try:
            return greedy_batch(
                self.model,
                rows,
                max_new_tokens=max_new_tokens,
                eos_ids=set(self.eos_ids),
                pad_id=self.pad_id,
                should_stop=check,
                max_length=self.context_length,
                sampler=Sampler(temperature, top_p, seeds),
                on_forward=lambda: self.usage.record(forward_passes=1),
            )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(rows) == 1:
                raise PromptoptError(
                    f"out of GPU memory generating {max_new_tokens} tokens after "
                    f"{len(rows[0])} input tokens",
                    hint="lower max_new_tokens, use -o dtype=bfloat16 or a smaller model",
                ) from None
            self.batch_size = max(1, len(rows) // 2)
            print(
                f"promptopt-hf: out of GPU memory, batch_size -> {self.batch_size}", file=sys.stderr
            )
            return None

    def _stop_check(self, stops: list[str]):  # -> StopCheck
        window = max(len(s) for s in stops) + 4

        def should_stop(_row: int, ids: list[int]) -> bool:
            tail = self.decode(ids[-window:], skip_special_tokens=True)
            return any(s in tail for s in stops)

        return should_stop

    # ------------------------------------------------------------------ scoring

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """Summed log-probs of each continuation's tokens after ``prefix``.

        Prefix and continuation are tokenized separately and their ids concatenated, so the
        scored tokens are exactly the continuation's own tokens (as a gradient method targets
        them), not whatever a joint tokenization would merge across the boundary."""
        from promptopt_hf.generation import continuation_logprobs

        prefix_ids = self.encode_input(prefix)
        conts = [self.encode(c) for c in continuations]
        longest = max((len(c) for c in conts), default=0)
        self.check_fits(len(prefix_ids) + longest, "the text to score")
        scores: list[float] = []
        for start in range(0, len(conts), self.batch_size):
            chunk = conts[start : start + self.batch_size]
            scores += continuation_logprobs(self.model, prefix_ids, chunk, self.pad_id)
            self.usage.record(
                forward_passes=1, prompt_tokens=sum(len(prefix_ids) + len(c) for c in chunk)
            )
        self.usage.record(requests=1)
        return scores

    # ------------------------------------------------------------------ special tokens

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (config_eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def _pad_id(self) -> int:
        for value in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if isinstance(value, int):
                return value
        return 0

    def _default_bos(self) -> int | None:
        bos = self.tokenizer.bos_token_id
        if bos is None:
            return None
        probe = self.tokenizer.encode("a", add_special_tokens=True)
        return int(bos) if probe and probe[0] == bos else None


def _bar(progress: Progress | None, total: int):  # -> ContextManager[Bar]
    from promptopt.progress import Progress

    return (progress or Progress(enabled=False)).bar(total=total, desc="generate", unit="seq")
