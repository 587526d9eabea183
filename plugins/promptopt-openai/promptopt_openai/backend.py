"""The ``openai`` backend: a model served behind an OpenAI-compatible HTTP API (vLLM, SGLang,
llama.cpp's server, llama-cpp-python's server, Ollama, TGI).

Black box: text in, text and log-probabilities out, through the *completions* endpoint. The
chat template is applied here, once (see :mod:`promptopt_openai.templates`), so ``chat(user)``
is the full model input and evaluation can append reasoning and the extractor and continue.
With ``-o endpoint=chat`` it generates through *chat completions* instead, the server applying
its own template (any chat API as an optimizer model; see :mod:`promptopt_openai.chatturns`).
Requests run concurrently, balanced over the base URLs, with retries (see
:mod:`promptopt_openai.client`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from promptopt.chattext import PLAIN_TEMPLATE, USER_SENTINEL, check_plain_template
from promptopt.components import Backend, ComponentOptions, operational
from promptopt.errors import PromptoptError
from promptopt.progress import Progress
from promptopt.sampling import is_greedy, sample_seed
from promptopt_openai import logprobs as lp
from promptopt_openai.answers import completion_problem, token_counts
from promptopt_openai.chatturns import CONTINUE_FIELDS, Endpoint, Prefill
from promptopt_openai.endpoint import API_KEY_ENV

if TYPE_CHECKING:
    from promptopt.chattext import TemplateMarkup

#: Server kinds whose own sampling defaults :func:`sampling_fields` turns off.
TUNED_KINDS = ("llama.cpp", "llama-cpp-python", "vllm", "sglang")
#: Completions fields the backend sets in its requests (what is sent, how much, how it is
#: decoded, what is scored), plus ``messages`` (a chat body): ``extra_body`` may set none of
#: them, so greedy decoding, token limits and scoring stay what promptopt asked for.
OWN_FIELDS = frozenset(
    {"model", "prompt", "messages", "max_tokens", "temperature", "top_p", "seed", "n"}
    | {"stream", "stop", "echo", "logprobs"}
)
#: Marker-like spellings in a template's text (``<|im_end|>``, ``<s>``, ``[INST]``): treated
#: as control tokens when the template's source does not list the model's control tokens.
_MARKER = re.compile(r"<\|[^<>|\s]{1,48}\|>|</?[A-Za-z][\w.-]{0,48}>|\[/?[A-Z][A-Z_]{1,24}\]")


class OpenAIOptions(ComponentOptions):
    """How the server is reached and how its model input is built (``-o key=value``)."""

    #: Requests in flight per base URL (a local llama.cpp server: its slot count; vLLM: more).
    concurrency: int = operational(8, ge=1)
    #: Seconds one request may take (long generations on a busy server take a while).
    request_timeout: float = operational(600.0, gt=0)
    connect_timeout: float = operational(10.0, gt=0)
    #: Seconds a server may stay silent before a "waiting for URL" line on stderr (repeated
    #: at that interval while it stays silent); 0: never.
    wait_notice: float = operational(30.0, ge=0)
    #: Retries after a 429/5xx answer or a connection error, with exponential backoff.
    max_retries: int = operational(4, ge=0)
    #: First backoff in seconds; doubled on every retry (at most 30 s).
    retry_backoff: float = operational(0.5, ge=0)
    #: The environment variable holding the API key (``OPENAI_API_KEY`` is the fallback).
    api_key_env: str = operational(API_KEY_ENV)
    #: Where the chat template comes from: a GGUF file, an HF folder, a .jinja file or a hub
    #: id. None: the server's report, else the served model id when it is a GGUF file or a
    #: model folder on this machine (never another file) or a hub id.
    tokenizer: str | None = None
    #: "auto": the chat template, or the plain template for a model that has none.
    template: Literal["auto", "chat", "plain"] = "auto"
    plain_template: str = PLAIN_TEMPLATE
    seed: int = 0
    #: ``completions`` (the default: log-probabilities, the template applied here) or
    #: ``chat``: generation through chat completions, the server's own template.
    endpoint: Endpoint = "completions"
    #: With ``endpoint=chat``, how an assistant prefix reaches the model: ``auto`` (by server
    #: kind), ``continue`` (vLLM/SGLang ``continue_final_message``), ``message`` (a trailing
    #: assistant message, llama-server), ``prepend`` (not sent; the reply follows it).
    prefill: Prefill = "auto"
    #: Extra JSON fields for every completions request (server-specific sampling settings).
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @field_validator("plain_template")
    @classmethod
    def _check_plain_template(cls, value: str) -> str:
        return check_plain_template(value)

    @field_validator("extra_body")
    @classmethod
    def _check_extra_body(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = reserved_fields() & set(value)
        if reserved:
            raise ValueError(
                f"extra_body may not set {', '.join(sorted(reserved))}: promptopt sets "
                "these itself (decoding, token limits, what is scored); use the matching "
                "promptopt options or flags instead"
            )
        return value


def reserved_fields() -> frozenset[str]:
    """Every request field the backend sets itself: :data:`OWN_FIELDS`, the chat endpoint's
    continuation fields and the sampling
    fields of every server kind it recognizes."""
    tuned = {
        key
        for kind in TUNED_KINDS
        for greedy in (True, False)
        for key in sampling_fields(kind, greedy)
    }
    return OWN_FIELDS | CONTINUE_FIELDS | tuned


def sampling_fields(kind: str, greedy: bool) -> dict[str, Any]:
    """Server-specific fields that make decoding plain greedy / temperature + nucleus, as on
    the local backends (llama.cpp servers default to top-k 40, min-p 0.05, repeat penalty
    1.1; vLLM and SGLang may apply a model's generation_config)."""
    if kind in ("llama.cpp", "llama-cpp-python"):
        return {"top_k": 1 if greedy else 0, "min_p": 0.0, "repeat_penalty": 1.0}
    if kind in ("vllm", "sglang"):
        return {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
    return {}


class OpenAIBackend(Backend[OpenAIOptions]):
    """A model behind an OpenAI-compatible server: client-side chat template, concurrent
    completions, prompt log-probabilities via ``echo``."""

    name = "openai"
    description = "a model served over the OpenAI API (vLLM, SGLang, llama.cpp server, Ollama)"
    white_box: ClassVar[bool] = False
    Options = OpenAIOptions

    def __init__(self, model: str | None, options: ComponentOptions | None = None) -> None:
        super().__init__(model, options)
        from promptopt_openai.client import ServerPool
        from promptopt_openai.discovery import discover
        from promptopt_openai.endpoint import api_key, parse_model_ref

        opts = self.options
        self.endpoint = parse_model_ref(model)
        #: requests in flight over all base URLs (evaluation sizes its chunks by it)
        self.concurrency = opts.concurrency * len(self.endpoint.base_urls)
        self.pool = ServerPool(
            self.endpoint.base_urls,
            api_key=api_key(opts.api_key_env),
            timeout_s=opts.request_timeout,
            connect_timeout_s=opts.connect_timeout,
            max_retries=opts.max_retries,
            backoff_s=opts.retry_backoff,
            concurrency=opts.concurrency,
            wait_notice_s=opts.wait_notice,
        )
        try:
            self.served = discover(self.pool, self.endpoint)
            if opts.endpoint == "chat":
                self._use_server_template()
            else:
                self._resolve_template()
        except BaseException:
            self.pool.close()
            raise
        #: prompt-log-probability alignment checked, per "input starts with BOS" class
        self._logprobs_checked: dict[bool, bool] = {}
        self._markup: TemplateMarkup | None = None

    # ------------------------------------------------------------------ identity

    @property
    def parallel_width(self) -> int:
        """Requests in flight over every base URL (``concurrency`` per URL)."""
        return self.concurrency

    @property
    def model_id(self) -> str:
        return self.served.name

    def describe(self) -> str:
        """``the <kind> server at <urls>``, for messages."""
        return self.served.describe(self.endpoint)

    @classmethod
    def identify(cls, model: str | None, options: ComponentOptions) -> dict[str, Any]:
        """What the server behind ``model`` serves now (its reported model, properties and
        template; never the URL), so a store keyed on it is never served another model's
        results; a server that does not answer is a one-line error here."""
        backend = cls(model, options)
        try:
            return backend.fingerprint()
        finally:
            backend.close()

    def fingerprint(self) -> dict[str, Any]:
        """The served model's identity as the server reports it (name, ``/models`` entry,
        llama.cpp ``/props``), the template source and decoding settings; never the URLs or
        the API key."""
        props = dict(self.served.props)
        if "chat_template" in props:
            props["chat_template"] = hashlib.sha256(
                str(props["chat_template"]).encode()
            ).hexdigest()[:16]
        return {
            "backend": self.name,
            "served_model": self.served.name,
            "server": self.served.kind,
            "reported": self.served.info,
            "props": props,
            "source": dict(self._source.identity) if self._source is not None else {},
            "template": self._template_digest,
            "template_kind": "chat" if self._renderer is not None else "plain",
            "strip_bos": self._strip_bos,
            "sampling": {"temperature": 0.0, "seed": self.options.seed},
            "decoding": sampling_fields(self.served.kind, greedy=True),
            "extra_body": self.options.extra_body,
            **self._chat_identity(),
        }

    def _chat_identity(self) -> dict[str, Any]:
        """The endpoint and prefill mode, only for ``endpoint=chat`` (completions fingerprints
        stay what they were, so their cache entries stay valid)."""
        if self.options.endpoint != "chat":
            return {}
        return {"endpoint": "chat", "prefill": self._prefill}

    # ------------------------------------------------------------------ text

    def _resolve_template(self) -> None:
        from promptopt_openai import templates

        opts = self.options
        source: templates.TemplateSource | None = None
        if opts.tokenizer:
            source = templates.from_path_or_hub(opts.tokenizer)
        if source is None:
            source = templates.from_props(self.served.props, origin=f"server:{self.describe()}")
        if source is None:
            source = templates.from_served_id(self.served.name)
        self._source = source
        self._renderer: templates.ChatRenderer | None = None
        if opts.template != "plain":
            if source is None:
                raise PromptoptError(
                    f"cannot find the chat template of {self.served.name!r} on {self.describe()}",
                    hint="pass -o tokenizer=PATH (its GGUF file, HF folder, .jinja file or hub "
                    "id), or -o template=plain for a base model",
                )
            if source.template is None and opts.template == "chat":
                raise PromptoptError(
                    f"{source.origin} has no chat template",
                    hint="use -o template=plain (or auto) for base models",
                )
            if source.template is not None:
                self._renderer = templates.ChatRenderer(source)
        template_source = source if self._renderer is not None else None
        self._template_digest = (
            template_source.digest(opts.plain_template)
            if template_source is not None
            else hashlib.sha256(opts.plain_template.encode()).hexdigest()[:16]
        )
        #: the server puts BOS in front itself: a template's own BOS is dropped before sending
        self._strip_bos = bool(source is not None and source.adds_bos and source.bos_token)

    def _use_server_template(self) -> None:
        """``endpoint=chat``: the server applies its own template; ``chat`` returns the plain
        template's text as the turn's name (cache keys, logs) and remembers the messages."""
        from promptopt_openai.chatturns import ChatTurns, prefill_mode

        self._source = None
        self._renderer = None
        self._template_digest = "server"
        self._strip_bos = False
        self._turns = ChatTurns()
        self._prefill = prefill_mode(self.options.prefill, self.served.kind)

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        """One user turn through the chat template (or the plain template), then
        ``assistant_prefix``, the start of the answer that generation continues. User text that
        spells one of the model's control tokens is refused: the server would parse it as a
        control token, where the local backends keep it plain text. With ``endpoint=chat`` the
        server renders the messages; the text returned names them for ``generate``."""
        if self.options.endpoint == "chat":
            from promptopt_openai.chatturns import Turn

            text = self.options.plain_template.format(user=user) + assistant_prefix
            self._turns.remember(text, Turn(user, assistant_prefix))
            return text
        markup = self.markup
        if markup.has_control(user):
            raise self._control_error(markup.first_control(user), "the prompt or question")
        rendered = self._render(user)
        markup.remember(rendered)
        if assistant_prefix:
            self._check_plain(rendered + assistant_prefix)
        return rendered + assistant_prefix

    def _render(self, user: str) -> str:
        if self._renderer is None:
            return self.options.plain_template.format(user=user)
        return self._renderer.render(user)

    @property
    def markup(self) -> TemplateMarkup:
        """The template's own text around the user content and the texts the server parses
        as control tokens (see :mod:`promptopt.chattext`)."""
        if self._markup is None:
            from promptopt.chattext import TemplateMarkup

            before, found, after = self._render(USER_SENTINEL).partition(USER_SENTINEL)
            controls = self._control_texts(before + after)
            if found and USER_SENTINEL not in after:
                self._markup = TemplateMarkup(before, after, controls)
            else:
                self._markup = TemplateMarkup(None, None, controls)
        return self._markup

    def _control_texts(self, markup_text: str) -> list[str]:
        """The model's control-token texts as its template source lists them; where it lists
        none (a server's ``/props``, a bare .jinja file): BOS, EOS and the marker-like
        spellings in the template's own text."""
        source = self._source
        if source is not None and source.controls is not None:
            return list(source.controls)
        texts = [source.bos_token, source.eos_token] if source is not None else []
        return [t for t in texts if t] + _MARKER.findall(markup_text)

    def _control_error(self, token: str, where: str) -> PromptoptError:
        return PromptoptError(
            f"{where} spells the control token {token!r}, which {self.describe()} would read "
            "as a control token, not as text (it parses control tokens in every prompt it "
            "is sent)",
            hint="remove it, or use the llamacpp or hf backend, which keep it plain text",
        )

    def _check_plain(self, text: str) -> None:
        """Refuse ``text`` when a control-token spelling in it lies outside the chat
        template's own markup (model output, a task's extractor, an answer option)."""
        markup = self.markup
        if not markup.has_control(text):
            return
        for piece, is_markup in markup.segments(text):
            if not is_markup and markup.has_control(piece):
                raise self._control_error(markup.first_control(piece), "text sent to the server")

    def _wire_text(self, text: str) -> str:
        """``text`` as sent: without a leading BOS the server will add anyway (so the model
        sees one BOS, as on the local backends)."""
        assert self._source is not None or not self._strip_bos
        if self._strip_bos and self._source is not None:
            return text.removeprefix(self._source.bos_token)
        return text

    def _starts_with_bos(self, text: str) -> bool:
        source = self._source
        if source is None or not source.bos_token:
            return False
        return bool(source.adds_bos) or text.startswith(source.bos_token)

    def _body(self, text: str, max_tokens: int, **fields: Any) -> dict[str, Any]:
        self._check_plain(text)
        greedy = is_greedy(float(fields.get("temperature", 0.0)))
        body: dict[str, Any] = {
            "model": self.served.name,
            "prompt": self._wire_text(text),
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "seed": self.options.seed,
            "n": 1,
            "stream": False,
        }
        body.update(sampling_fields(self.served.kind, greedy))
        body.update(fields)
        body.update(self.options.extra_body)
        return body

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
        """Concurrent completions requests; sampled ones carry the per-sample seeds of the
        contract (one request per sample), greedy ones are asked once per text."""
        if self.options.endpoint == "chat":
            return self._generate_chat(
                texts, max_new_tokens, stop, progress, temperature, top_p, seed, n
            )
        base = self.options.seed if seed is None else seed
        greedy = is_greedy(temperature)
        extra: dict[str, Any] = {"stop": list(stop)} if stop else {}
        bodies: list[dict[str, Any]] = []
        for i, text in enumerate(texts):
            if greedy:
                bodies.append(self._body(text, max_new_tokens, **extra))
                continue
            for j in range(n):
                bodies.append(
                    self._body(
                        text,
                        max_new_tokens,
                        temperature=temperature,
                        top_p=top_p,
                        seed=sample_seed(base, i, j),
                        **extra,
                    )
                )
        self.usage.record(requests=1)
        answers = self._post_many(bodies, progress, "generate (openai)")
        outputs: list[str] = []
        for answer in answers:  # each checked by completion_problem: text is a string
            prompt_tokens, completion_tokens = token_counts(answer)
            self.usage.record(
                prompt_tokens=prompt_tokens,
                generated_tokens=completion_tokens,
                forward_passes=completion_tokens + 1,
            )
            outputs.append(str(answer["choices"][0]["text"]))
        if greedy and n > 1:
            outputs = [out for out in outputs for _ in range(n)]
        return outputs

    def _generate_chat(
        self,
        texts: Sequence[str],
        max_new_tokens: int,
        stop: Sequence[str],
        progress: Progress | None,
        temperature: float,
        top_p: float,
        seed: int | None,
        n: int,
    ) -> list[str]:
        """``generate`` through chat completions: each text names a turn from :meth:`chat`
        (extended: the extension continues the assistant's answer)."""
        from promptopt_openai.chatturns import (
            Turn,
            chat_completion_problem,
            content_of,
            messages,
            reply_text,
        )

        base = self.options.seed if seed is None else seed
        greedy = is_greedy(temperature)
        turns: list[Turn] = []
        for text in texts:
            found = self._turns.find(text)
            if found is None:
                raise PromptoptError(
                    "the chat endpoint can only answer texts made by this backend's chat()",
                    hint="use -o endpoint=completions to continue arbitrary text",
                )
            turn, more = found
            if more and self._prefill == "prepend":
                raise PromptoptError(
                    f"{self.describe()} cannot continue an assistant message through the chat "
                    "endpoint (needed to append reasoning or an answer extractor)",
                    hint="use -o endpoint=completions for the task model, or -o prefill=message "
                    "where the server continues a final assistant message",
                )
            turns.append(Turn(turn.user, turn.assistant + more))
        bodies: list[dict[str, Any]] = []
        prefixes: list[str] = []
        for i, turn in enumerate(turns):
            sent, fields = messages(turn, self._prefill)
            for j in range(1 if greedy else n):
                body: dict[str, Any] = {
                    "model": self.served.name,
                    "messages": sent,
                    "max_tokens": max_new_tokens,
                    "temperature": 0.0 if greedy else temperature,
                    "top_p": 1.0 if greedy else top_p,
                    "seed": self.options.seed if greedy else sample_seed(base, i, j),
                    "n": 1,
                    "stream": False,
                }
                if stop:
                    body["stop"] = list(stop)
                body.update(sampling_fields(self.served.kind, greedy))
                body.update(fields)
                body.update(self.options.extra_body)
                bodies.append(body)
                prefixes.append(turn.assistant)
        self.usage.record(requests=1)
        answers = self.pool.post_many(
            "/chat/completions",
            bodies,
            progress=progress,
            desc="generate (openai chat)",
            check=chat_completion_problem,
        )
        outputs: list[str] = []
        for answer, prefix in zip(answers, prefixes, strict=True):
            prompt_tokens, completion_tokens = token_counts(answer)
            self.usage.record(
                prompt_tokens=prompt_tokens,
                generated_tokens=completion_tokens,
                forward_passes=completion_tokens + 1,
            )
            outputs.append(reply_text(content_of(answer), prefix, self._prefill))
        if greedy and n > 1:
            outputs = [out for out in outputs for _ in range(n)]
        return outputs

    def _post_many(
        self, bodies: list[dict[str, Any]], progress: Progress | None, desc: str
    ) -> list[dict[str, Any]]:
        return self.pool.post_many(
            "/completions", bodies, progress=progress, desc=desc, check=completion_problem
        )

    # ------------------------------------------------------------------ scores

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """Each continuation's summed log-probability after ``prefix``, from echoed prompt
        log-probabilities (one request per continuation, plus one to count the prefix)."""
        if self.options.endpoint == "chat":
            raise PromptoptError(
                "the chat endpoint gives no prompt log-probabilities",
                hint="use -o endpoint=completions (the default), or --scoring generate",
            )
        bodies = [self._body(prefix, 1)]  # built first: refused text sends nothing
        bodies += [self._body(prefix + c, 1, echo=True, logprobs=1) for c in continuations]
        self._check_prompt_logprobs(prefix)
        answers = self._post_many(bodies, None, "score (openai)")
        try:
            prefix_tokens, _ = lp.usage_counts(answers[0])
            results: list[float] = []
            prompt_total = prefix_tokens
            for continuation, answer in zip(continuations, answers[1:], strict=True):
                joint, _ = lp.usage_counts(answer)
                prompt_total += joint
                k = joint - prefix_tokens
                results.append(lp.tail_logprob(answer, max(k, 1) if continuation else 0))
        except lp.PromptLogprobsUnavailable as exc:
            raise self._no_logprobs(str(exc)) from None
        self.usage.record(requests=1, forward_passes=1, prompt_tokens=prompt_total)
        return results

    def _no_logprobs(self, reason: str) -> PromptoptError:
        return PromptoptError(
            f"{self.describe()} cannot return prompt log-probabilities for "
            f"{self.served.name!r}: {reason}",
            hint="use --scoring generate",
        )

    def _check_prompt_logprobs(self, text: str) -> None:
        """Once per kind of input (starting with BOS or not): the echoed log-probability of a
        token must equal the one the server gives when it generates that token."""
        from promptopt_openai.client import ServerError

        key = self._starts_with_bos(text)
        if self._logprobs_checked.get(key):
            return
        try:
            first = self.pool.post(
                "/completions",
                self._body(text, 1, logprobs=1),
                retries=1,
                check=completion_problem,
            )
            generated = lp.generated_logprob(first)
            if generated is not None:
                token, expected = generated
                echoed = self.pool.post(
                    "/completions",
                    self._body(text + token, 1, echo=True, logprobs=1),
                    retries=1,
                    check=completion_problem,
                )
                k = lp.usage_counts(echoed)[0] - lp.usage_counts(first)[0]
                if k == 1:
                    got = lp.tail_logprob(echoed, 1)
                    if abs(got - expected) > lp.ALIGNMENT_TOL:
                        raise lp.PromptLogprobsUnavailable(
                            f"its echoed log-probabilities are misaligned ({got:.3f} for a "
                            f"token it generated with {expected:.3f})"
                        )
        except lp.PromptLogprobsUnavailable as exc:
            raise self._no_logprobs(str(exc)) from None
        except ServerError as exc:
            if exc.status is None:
                raise
            raise self._no_logprobs(exc.message) from None
        self._logprobs_checked[key] = True

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()
