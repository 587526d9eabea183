"""The ``llamacpp`` backend: GGUF models via llama-cpp-python, greedy text and log-probabilities.

Black-box (no gradients): enough for every method whose components only generate and score.
llama_cpp is imported when a model is loaded, never at plugin import.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from promptopt.chattext import PLAIN_TEMPLATE, USER_SENTINEL, check_plain_template
from promptopt.components import Backend, ComponentOptions
from promptopt.cpus import usable_cores
from promptopt.errors import ModelLoadError, PromptoptError
from promptopt.progress import Progress
from promptopt.sampling import is_greedy, sample_seed
from promptopt.stops import cut_at_stop
from promptopt_llamacpp.modelfiles import file_sha256, resolve_model
from promptopt_llamacpp.scoring import options_logprobs

if TYPE_CHECKING:
    from promptopt.chattext import TemplateMarkup


class LlamaCppOptions(ComponentOptions):
    """How the GGUF model is loaded and sampled (``-o key=value``)."""

    n_ctx: int = Field(default=4096, ge=16)
    #: Threads for generation; None = one per physical core this process may run on
    #: (llama-cpp-python's own default, half the logical CPUs, leaves a core idle on machines
    #: without hyperthreads).
    n_threads: int | None = None
    #: Threads for prompt (batch) evaluation; None = the same as ``n_threads``. llama-cpp-python
    #: would use every logical CPU, which stalls prefill badly when other processes share them.
    n_threads_batch: int | None = None
    n_batch: int = Field(default=512, ge=1)
    #: Layers offloaded to the GPU; None = all (-1) when llama.cpp was built with GPU support.
    n_gpu_layers: int | None = None
    seed: int = 0
    #: KV-cache precision; f32 makes log-probabilities match an F32 reference to ~1e-6.
    kv_cache_type: Literal["f16", "f32", "q8_0"] = "f16"
    #: "auto": the model's chat template, or the plain template for models without one.
    template: Literal["auto", "chat", "plain"] = "auto"
    plain_template: str = PLAIN_TEMPLATE
    #: Greedy generation engine: ``batched`` decodes many sequences per call (the token
    #: generator of :mod:`promptopt_llamacpp.idgen`, same ids as one at a time); ``single`` runs
    #: ``create_completion`` one sequence after another. Sampling always uses ``single``.
    engine: Literal["batched", "single"] = "batched"
    #: Sequences the batched engine decodes together.
    parallel: int = Field(default=8, ge=1)
    #: ``native``: run the file as it is; ``f32``/``f16``: its weights in floats (a quantized
    #: file dequantized once, cached), so llama.cpp computes like transformers on the same model.
    weights: Literal["native", "f32", "f16"] = "native"

    @field_validator("plain_template")
    @classmethod
    def _check_plain_template(cls, value: str) -> str:
        return check_plain_template(value)


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ModelLoadError(
            "the llamacpp backend needs llama-cpp-python", hint="pip install llama-cpp-python"
        ) from None
    return llama_cpp


def default_threads() -> int:
    """One thread per physical core this process may use (hyperthread siblings add little to
    llama.cpp and slow it when oversubscribed), at least one."""
    return usable_cores()


def gpu_layers_default() -> int:
    """-1 (offload every layer) when this llama.cpp build supports GPU offload, else 0."""
    return -1 if bool(_llama_cpp().llama_supports_gpu_offload()) else 0


class LlamaCppBackend(Backend[LlamaCppOptions]):
    """A GGUF model in llama.cpp: chat template, greedy generation, prefix-reusing scoring."""

    name = "llamacpp"
    description = "GGUF models via llama.cpp (black-box: generation and log-probabilities)"
    Options = LlamaCppOptions
    loads_gguf: ClassVar[bool] = True

    def __init__(self, model: str | None, options: ComponentOptions | None = None) -> None:
        super().__init__(model, options)
        self.path: Path = resolve_model(model)
        if self.options.weights != "native":
            from promptopt_llamacpp.modelfiles import gguf_for

            self.path = gguf_for(self.path, dtype=self.options.weights)
        _llama_cpp()  # a one-line error before anything else when it is missing
        opts = self.options
        self.n_gpu_layers = (
            opts.n_gpu_layers if opts.n_gpu_layers is not None else gpu_layers_default()
        )
        self.n_threads = opts.n_threads or default_threads()
        self.n_threads_batch = opts.n_threads_batch or self.n_threads
        self.llm = self._load()
        # closes the model before interpreter teardown, where Llama.__del__ would fail noisily
        self._finalizer = weakref.finalize(self, self.llm.close)
        self._sha256: str | None = None
        self._quantization = self._read_quantization()
        self._template = self._resolve_template()
        self._formatter: Any = None
        self._markup: TemplateMarkup | None = None
        self._engine: Any = None
        if self._template is not None:
            self._check_template()

    def _load(self) -> Any:
        """The ``Llama`` object. llama-cpp-python compiles every chat template of the file while
        loading; a broken one is a one-line error, unless ``-o template=plain`` says it will
        never be rendered, in which case the load goes on without compiling it."""
        import jinja2

        from promptopt_llamacpp.kvslots import KV_TYPES
        from promptopt_llamacpp.templates import broken_template_error, templates_not_compiled

        opts = self.options
        kwargs = {
            "model_path": str(self.path),
            "n_ctx": opts.n_ctx,
            "n_batch": opts.n_batch,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads_batch,
            "n_gpu_layers": self.n_gpu_layers,
            "seed": opts.seed,
            "logits_all": True,
            "type_k": KV_TYPES[opts.kv_cache_type],
            "type_v": KV_TYPES[opts.kv_cache_type],
            "verbose": False,
        }
        llama_cpp = _llama_cpp()
        try:
            if opts.template == "plain":
                with templates_not_compiled(llama_cpp):
                    return llama_cpp.Llama(**kwargs)
            return llama_cpp.Llama(**kwargs)
        except jinja2.TemplateError as exc:
            raise broken_template_error(self.path.name, exc) from None
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {str(self.path)!r}: {str(exc).splitlines()[0]}",
                hint="check that the GGUF file is complete and of an architecture llama.cpp knows",
            ) from None

    def _check_template(self) -> None:
        """Render the chat template once now, so a template that fails only when rendered (a
        sandbox violation, a bad filter) is a one-line error before any work."""
        from promptopt_llamacpp.templates import broken_template_error

        try:
            self.chat("Is this template usable?")
        except Exception as exc:  # jinja2 and the template's own code raise many types
            raise broken_template_error(self.path.name, exc) from None

    # ------------------------------------------------------------------ identity

    @property
    def parallel_width(self) -> int:
        """Sequences the batched engine decodes together (``parallel``); 1 for ``single``."""
        return self.options.parallel if self.options.engine == "batched" else 1

    @property
    def model_id(self) -> str:
        return str(self.path)

    def quantization(self) -> str:
        """llama.cpp's name of the file type, e.g. ``Q4_1`` or ``Q8_0``."""
        return self._quantization

    def _read_quantization(self) -> str:
        llama_cpp = _llama_cpp()
        ftype = llama_cpp.llama_model_ftype(self.llm.model)
        name = llama_cpp.llama_ftype_name(ftype)
        return name.decode() if name else str(ftype)

    def fingerprint(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        template = self._template if self._template is not None else self.options.plain_template
        return {
            "backend": self.name,
            "model_sha256": self._sha256,
            "quantization": self.quantization(),
            "sampling": {"temperature": 0.0, "seed": self.options.seed},
            "template": hashlib.sha256(template.encode()).hexdigest()[:16],
            "template_kind": "chat" if self._template is not None else "plain",
            "n_ctx": self.options.n_ctx,
            "kv_cache_type": self.options.kv_cache_type,
            "engine": self.options.engine,
            "gpu": self.n_gpu_layers != 0,
            "llama_cpp": _llama_cpp().__version__,
        }

    # ------------------------------------------------------------------ text

    def _resolve_template(self) -> str | None:
        template = self.llm.metadata.get("tokenizer.chat_template")
        if self.options.template == "plain":
            return None
        if self.options.template == "chat" and not template:
            raise PromptoptError(
                f"{self.path.name} has no chat template",
                hint="use -o template=plain (or auto) for base models",
            )
        return template or None

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        """One user turn through the model's chat template (or the plain template), then
        ``assistant_prefix``, the start of the answer that generation continues. User text and
        prefix stay plain text when tokenized, control-token spellings included."""
        rendered = self._render(user)
        markup = self.markup
        if markup.known:
            markup.remember(rendered)
        elif markup.has_control(user):
            raise PromptoptError(
                f"the prompt or question spells a control token ({markup.first_control(user)}), "
                f"and the chat template of {self.path.name} rewrites the user text, so it "
                "cannot be kept plain",
                hint="remove it from the prompt or question, or use -o template=plain",
            )
        return rendered + assistant_prefix

    def _render(self, user: str) -> str:
        if self._template is None:
            return self.options.plain_template.format(user=user)
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._formatter = Jinja2ChatFormatter(
                self._template,
                eos_token=self._token_text(self.llm.token_eos()),
                bos_token=self._token_text(self.llm.token_bos()),
                add_generation_prompt=True,
            )
        return str(self._formatter(messages=[{"role": "user", "content": user}]).prompt)

    @property
    def markup(self) -> TemplateMarkup:
        """The template's own text around the user content, and the texts of the tokens
        llama.cpp parses as control tokens (see :mod:`promptopt.chattext`)."""
        if self._markup is None:
            from promptopt.chattext import TemplateMarkup

            rendered = self._render(USER_SENTINEL)
            before, found, after = rendered.partition(USER_SENTINEL)
            if found and USER_SENTINEL not in after:
                self._markup = TemplateMarkup(before, after, self._control_texts())
            else:
                self._markup = TemplateMarkup(None, None, self._control_texts())
        return self._markup

    def _control_texts(self) -> list[str]:
        """Texts of the tokens llama.cpp's special-token parsing matches (control,
        user-defined and unknown tokens)."""
        llama_cpp = _llama_cpp()
        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        wanted = (
            llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
            | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
            | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
        )
        texts = []
        for token in range(int(llama_cpp.llama_vocab_n_tokens(vocab))):
            if int(llama_cpp.llama_vocab_get_attr(vocab, token)) & wanted:
                texts.append(self._token_text(token))
        return texts

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", "replace")

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model sees it (BOS if the model adds one). Only the
        chat template's own markup is parsed into control tokens; control-token text anywhere
        else (in a question, a prompt or model output) is plain text."""
        ids: list[int] = []
        for i, (piece, markup) in enumerate(self.markup.segments(text)):
            ids += self.llm.tokenize(piece.encode("utf-8"), add_bos=i == 0, special=markup)
        bos = self.llm.token_bos()
        if len(ids) > 1 and ids[0] == bos and ids[1] == bos:
            ids = ids[1:]  # the template already wrote BOS
        return ids

    def _check_fits(self, n_tokens: int, what: str) -> None:
        if n_tokens >= self.options.n_ctx:
            raise PromptoptError(
                f"{what} has {n_tokens} tokens, more than the context of {self.options.n_ctx}",
                hint="raise it with -o n_ctx=N",
            )

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
        """Greedy: many sequences per decode call (``engine=batched``); sampled: one sequence at a
        time with the per-sample seeds of the contract."""
        if is_greedy(temperature) and self.options.engine == "batched" and texts:
            once = self._generate_batched(texts, max_new_tokens, stop, progress)
            return [out for out in once for _ in range(n)]
        base = self.options.seed if seed is None else seed
        jobs = [
            (text, None if is_greedy(temperature) else sample_seed(base, i, j))
            for i, text in enumerate(texts)
            for j in range(n)
        ]
        self.usage.record(requests=1)
        outputs: list[str] = []
        with (progress or Progress(enabled=False)).bar(len(jobs), "generate (llama.cpp)") as bar:
            for text, sample in jobs:
                outputs.append(
                    self._generate_one(text, max_new_tokens, stop, temperature, top_p, sample)
                )
                bar.update(1)
        return outputs

    def _generate_one(
        self,
        text: str,
        max_new_tokens: int,
        stop: Sequence[str],
        temperature: float,
        top_p: float,
        sample: int | None,
    ) -> str:
        ids = self.tokenize(text)
        self._check_fits(len(ids), "the prompt")
        max_tokens = min(max_new_tokens, self.options.n_ctx - len(ids))
        # llama-cpp-python reuses the cached prefix and evaluates at least the last prompt
        # token; a token evaluated alone is multiplied another way (a one-row product: ~1e-5 on
        # F32 weights), so a sample would depend on what the previous call left in the cache.
        # Evaluating at least two prompt tokens gives the numbers of a fresh evaluation.
        self.llm.n_tokens = min(self.llm.n_tokens, max(0, len(ids) - 2))
        if sample is None:  # greedy
            decoding: dict[str, Any] = {"temperature": 0.0, "top_k": 1, "seed": self.options.seed}
        else:  # plain temperature + nucleus sampling: no top-k, no min-p
            decoding = {"temperature": temperature, "top_p": top_p, "top_k": 0, "min_p": 0.0}
            decoding["seed"] = sample
        result = self.llm.create_completion(
            ids, max_tokens=max_tokens, repeat_penalty=1.0, stop=list(stop) or None, **decoding
        )
        usage = result.get("usage", {})
        self.usage.record(
            prompt_tokens=len(ids),
            generated_tokens=int(usage.get("completion_tokens", 0)),
            forward_passes=int(usage.get("completion_tokens", 0)) + 1,
        )
        return str(result["choices"][0]["text"])

    def _generate_batched(
        self,
        texts: Sequence[str],
        max_new_tokens: int,
        stop: Sequence[str],
        progress: Progress | None,
    ) -> list[str]:
        """Greedy continuations through the batched token generator; inputs too long to take
        ``max_new_tokens`` more tokens run one at a time (their budget is cut to the context)."""
        rows = [self.tokenize(text) for text in texts]
        for ids in rows:
            self._check_fits(len(ids), "the prompt")
        fits = [i for i, ids in enumerate(rows) if len(ids) + max_new_tokens <= self.options.n_ctx]
        outputs = [""] * len(rows)
        stops = [s for s in stop if s]
        window = max((len(s) for s in stops), default=0) + 8

        def stop_check(row: int, ids: list[int]) -> bool:
            tail = self._detokenize(ids[-window:])
            return any(s in tail for s in stops)

        engine = self._batched_engine()
        before = engine.stats.snapshot()  # its usage: one request, prompt tokens it evaluated
        with (progress or Progress(enabled=False)).bar(len(rows), "generate (llama.cpp)") as bar:
            generated = engine.generate_ids(
                [rows[i] for i in fits],
                max_new_tokens=max_new_tokens,
                eos_ids=engine.default_eos_ids,
                stop_check=stop_check if stops else None,
                on_done=bar.update,
            )
            for i, ids in zip(fits, generated, strict=True):
                # cut as create_completion cuts a single sequence
                outputs[i] = cut_at_stop(self._detokenize(ids), stops)
            for i in sorted(set(range(len(rows))) - set(fits)):
                outputs[i] = self._generate_one(texts[i], max_new_tokens, stop, 0.0, 1.0, None)
                bar.update(1)
        self.usage.add(engine.stats.since(before).usage())
        return outputs

    def _batched_engine(self) -> Any:
        """The batched token generator on this backend's file and settings (built once)."""
        if self._engine is None:
            from promptopt_llamacpp.idgen import LlamaTokenGenerator

            opts = self.options
            self._engine = LlamaTokenGenerator(
                self.path,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch,
                n_ctx=opts.n_ctx,
                n_parallel=opts.parallel,
                n_batch=max(opts.n_batch, opts.parallel),
                n_gpu_layers=self.n_gpu_layers,
                kv_cache_type=opts.kv_cache_type,
            )
        return self._engine

    def _detokenize(self, ids: Sequence[int]) -> str:
        return bytes(self.llm.detokenize(list(ids))).decode("utf-8", errors="ignore")

    # ------------------------------------------------------------------ scores

    def continuation_tokens(
        self, prefix: str, continuation: str, prefix_ids: Sequence[int] | None = None
    ) -> list[int]:
        """The tokens of ``continuation`` after ``prefix``: taken from the joint tokenization
        when it extends the prefix's own, else the continuation tokenized on its own."""
        prefix_ids = list(prefix_ids) if prefix_ids is not None else self.tokenize(prefix)
        joint = self.tokenize(prefix + continuation)
        if joint[: len(prefix_ids)] == prefix_ids:
            return joint[len(prefix_ids) :]
        return list(self.llm.tokenize(continuation.encode("utf-8"), add_bos=False, special=False))

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        prefix_ids = self.tokenize(prefix)
        options = [self.continuation_tokens(prefix, c, prefix_ids) for c in continuations]
        self._check_fits(len(prefix_ids) + max((len(o) for o in options), default=0), "the text")
        self.usage.record(
            requests=1, forward_passes=1, prompt_tokens=len(prefix_ids) + sum(map(len, options))
        )
        return options_logprobs(self.llm, prefix_ids, options)

    def close(self) -> None:
        if getattr(self, "_engine", None) is not None:
            self._engine.close()
            self._engine = None
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
