"""Networks and what runs on them: backbones, heads, LoRA, the generative text format (targets), decoding,
likelihood scoring, and the methods (training recipes, :mod:`emoreason.models.methods`)."""
