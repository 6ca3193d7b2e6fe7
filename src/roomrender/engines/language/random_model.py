"""A tiny random chat model, built offline and saved as a real one is (tests, benches): a Qwen2
causal LM with random weights (hidden 16, 2 layers) and a byte-level BPE tokenizer trained on a
few lines, with Qwen2.5's ChatML template. It answers gibberish, through the code users run."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
_LINES = [
    "A bright Scandinavian living room with light oak floors, white walls and a grey sofa.",
    "Warm lighting, linen curtains, a jute rug and plants make a bedroom calm.",
    "Paint the walls sage green; keep the ceiling white to make the room feel taller.",
    "Mid-century modern: teak, mustard accents, tapered legs, globe pendant lamps.",
    "Industrial loft kitchens mix exposed brick, black steel and concrete worktops.",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def save_random_chat_model(folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen2 chat model and its tokenizer into `folder`; returns it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(_LINES * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=2048, tie_word_embeddings=True, initializer_range=1.0,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder
