"""Networks: backbones (which pretrained or embedded network), heads, and methods (how inputs become targets)."""
