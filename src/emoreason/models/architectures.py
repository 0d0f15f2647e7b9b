"""Published architecture hyper-parameters of the two backbones, as plain data.

Why this exists: memory planning and the random-weights GPU benchmark need the exact shapes of the paper's
backbones without downloading multi-gigabyte checkpoints, and every consumer must agree on one copy.

Sources (checked against the hub's ``config.json``):

- ``EleutherAI/polyglot-ko-5.8b``: GPT-NeoX, 28 layers, hidden 4096, 16 heads, FFN 16384, vocabulary 30080
  (30003 tokens padded), rotary on 25% of each head (``rotary_pct`` 0.25; the 12.8b model uses 0.5), parallel
  residual, untied input/output embeddings. 5,885,059,072 parameters.
- ``beomi/KcELECTRA-base-v2022``: ELECTRA discriminator, 12 layers, hidden 768, 12 heads, FFN 3072,
  vocabulary 54343, 512 positions.
"""

from typing import Any, Final

from transformers import ElectraConfig, GPTNeoXConfig

POLYGLOT_KO_5_8B: Final[dict[str, Any]] = {
    "vocab_size": 30080,
    "hidden_size": 4096,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "intermediate_size": 16384,
    "hidden_act": "gelu",
    "rotary_pct": 0.25,
    "rotary_emb_base": 10000,
    "max_position_embeddings": 2048,
    "layer_norm_eps": 1e-5,
    "use_parallel_residual": True,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

KCELECTRA_BASE_V2022: Final[dict[str, Any]] = {
    "vocab_size": 54343,
    "embedding_size": 768,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}


def polyglot_ko_5_8b_config(**overrides: Any) -> GPTNeoXConfig:
    """Polyglot-ko-5.8b's config; ``overrides`` shrink it for tests (e.g. ``num_hidden_layers=2``)."""
    return GPTNeoXConfig(**{**POLYGLOT_KO_5_8B, **overrides})


def kcelectra_base_config(**overrides: Any) -> ElectraConfig:
    """KcELECTRA-base-v2022's config; ``overrides`` add task fields such as ``num_labels=44``."""
    return ElectraConfig(**{**KCELECTRA_BASE_V2022, **overrides})
