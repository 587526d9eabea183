"""Build a tiny random Llama model and a BPE tokenizer trained on local text, for fast tests.

Nothing is downloaded: the tokenizer is trained with ``tokenizers`` on the corpus below, the
model is a random ``LlamaForCausalLM`` with a ChatML template like SmolLM2-Instruct's, and both
are written with ``save_pretrained`` (safetensors) so they load back with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = """
Use proper logical reasoning and think step by step. Finally give the actual correct answer.
Therefore, the final answer (use exact format: '$A' or '$B' or '$C') is $A.
Therefore, the final answer (use exactly this format: $NUMBER$, where NUMBER is a positive or
negative integer) is $42$. The answer is 17. Let's think step by step about the question.
Premises: All dogs are animals. Some animals are cats. If it rains, the ground is wet.
Statement: The ground is wet. Options: (A) True (B) False (C) Uncertain. Yes or No? valid or
invalid? plausible or implausible? True or False? not ( True ) and ( False ) is
Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips
in May. How many clips did Natalia sell altogether in April and May? 48 / 2 = 24. 48 + 24 = 72.
Sort the following words alphabetically: apple banana cherry. Complete the rest of the sequence,
making sure that the parentheses are closed properly: [ { ( < > ) } ]
Today is Christmas Eve of 1937. What is the date 10 days ago in MM/DD/YYYY? 12/14/1937
The quick brown fox jumps over the lazy dog, reasons carefully, and explains its answer.
0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 1,000 -5 3.5 , . ; : ! ? ' " $ % ( ) [ ] { } < > = + - * /
a b c d e f g h i j k l m n o p q r s t u v w x y z
A B C D E F G H I J K L M N O P Q R S T U V W X Y Z
"""


def corpus_lines() -> list[str]:
    """The training text for the tiny tokenizer, repeated so merges are learned."""
    lines = [line for line in _CORPUS.strip().splitlines() if line.strip()]
    return lines * 4


def build_tiny_tokenizer(vocab_size: int = 600):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer with ChatML special tokens, trained on :func:`corpus_lines`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    path: str | Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    architecture: str = "llama",
) -> Path:
    """Write a tiny random model and its tokenizer to ``path``; returns ``path``.

    ``architecture`` is ``"llama"`` (the default, what llama.cpp tests convert to GGUF) or
    ``"gemma2"`` (scales its input embeddings inside the embedding module, which gradient code
    must respect)."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM

    kinds = {"llama": (LlamaConfig, LlamaForCausalLM), "gemma2": (Gemma2Config, Gemma2ForCausalLM)}
    if architecture not in kinds:
        raise ValueError(f"architecture must be one of {sorted(kinds)}, got {architecture!r}")
    config_class, model_class = kinds[architecture]
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = model_class(config)
    with torch.no_grad():  # larger weights than the default init, so outputs vary with input
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.1)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
