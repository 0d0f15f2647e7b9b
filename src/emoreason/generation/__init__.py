"""Step 1 of the paper: reasoning for labelled KOTE comments, from an OpenAI-compatible API or a cache.

``run.generate(cfg)`` is the entry point behind ``generate.py``; see ``docs/generation.md``.
"""
