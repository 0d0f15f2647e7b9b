"""Networks: backbones (which network), heads, methods (how inputs become targets), LoRA."""
