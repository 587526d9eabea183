"""The ``hf`` backend's prompt templates: one user turn through the tokenizer's chat template
(or the plain completion template for models without one), and the template's own text around
the user content, so token methods can splice ids and only that text becomes control tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.chattext import USER_SENTINEL
from promptopt.errors import ModelLoadError, PromptoptError

if TYPE_CHECKING:
    from promptopt.chattext import TemplateMarkup


class HFTemplates:
    """The templates of one loaded tokenizer. The chat template is read from the tokenizer on
    every use, so what is cached (the markup, the parts) follows a template that changes."""

    def __init__(self, tokenizer: Any, *, mode: str, plain_template: str, model_id: str) -> None:
        self.tokenizer = tokenizer
        #: "auto": the tokenizer's chat template, or the plain template when it has none.
        self.mode = mode
        self.plain_template = plain_template
        self.model_id = model_id
        if mode == "chat" and not tokenizer.chat_template:
            raise ModelLoadError(
                f"model {model_id} has no chat template",
                hint="use -o template=plain (or auto) for base models",
            )
        self._markup: tuple[Any, TemplateMarkup] | None = None
        self._parts: tuple[Any, tuple[str, str]] | None = None

    @property
    def chat_template(self) -> str | None:
        """The chat template in use, or None for the plain template."""
        if self.mode == "plain":
            return None
        return self.tokenizer.chat_template or None

    def chat(self, user: str) -> str:
        """One user turn through the chat template with the generation prompt (or through the
        plain template). The user text stays plain text when tokenized, control-token
        spellings included."""
        rendered = self._render(user)
        if rendered is None:
            rendered = self.plain_template.format(user=user)
        markup = self.markup
        if markup.known:
            markup.remember(rendered)
        elif markup.has_control(user):
            raise PromptoptError(
                f"the prompt or question spells a control token ({markup.first_control(user)}), "
                f"and the chat template of {self.model_id} rewrites the user text, so it "
                "cannot be kept plain",
                hint="remove it from the prompt or question, or use -o template=plain",
            )
        return rendered

    @property
    def markup(self) -> TemplateMarkup:
        """The template's own text around the user content, and the control-token texts of
        the tokenizer (see :mod:`promptopt.chattext`)."""
        template = (self.chat_template, self.plain_template)
        if self._markup is None or self._markup[0] != template:  # one per template
            from promptopt.chattext import TemplateMarkup

            controls = list(getattr(self.tokenizer, "added_tokens_encoder", {}) or {})
            try:
                before, after = self.parts()
            except PromptoptError:
                self._markup = (template, TemplateMarkup(None, None, controls))
            else:
                self._markup = (template, TemplateMarkup(before, after, controls))
        return self._markup[1]

    def parts(self, user: str | None = None) -> tuple[str, str]:
        """(text before, text after) the user content in :meth:`chat`'s output, so token
        methods can splice ids: ``chat(u) == before + u + after`` (``u.strip()`` for templates
        that trim the content, as Llama 3's does)."""
        template = (self.chat_template, self.plain_template)
        if self._parts is None or self._parts[0] != template:  # rendered once per template
            rendered = self._render(USER_SENTINEL)
            if rendered is None:
                rendered = self.plain_template.format(user=USER_SENTINEL)
            before, found, after = rendered.partition(USER_SENTINEL)
            if not found:
                raise self._unsplittable()
            self._parts = (template, (before, after))
        before, after = self._parts[1]
        if user is None or before + user + after == (full := self.chat(user)):
            return before, after
        # A template that rewrites the content (Llama 3 trims it): locate the user text itself.
        for content in (user, user.strip()):
            at = full.find(content) if content else -1
            if at != -1:
                return full[:at], full[at + len(content) :]
        raise self._unsplittable()

    def check(self, where: str) -> None:
        """Render the chat template once now: a template that does not compile or render (a
        Jinja syntax error, a sandbox violation) is a one-line error (naming ``where`` it
        came from) before any work."""
        try:
            self._render("Is this template usable?")
        except Exception as exc:  # jinja2 and the template's own code raise many types
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelLoadError(
                f"the chat template in {where} cannot be used ({type(exc).__name__}: {detail})"[
                    :300
                ],
                hint="pass -o template=plain to use a plain completion template instead",
            ) from None

    def _unsplittable(self) -> PromptoptError:
        return PromptoptError(
            f"the chat template of {self.model_id} drops or rewrites the user message, so "
            "token methods cannot splice it",
            hint="use -o template=plain",
        )

    def _render(self, user: str) -> str | None:
        if self.chat_template is None:
            return None
        return str(
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        )
