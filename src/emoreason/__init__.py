"""emoreason: reasoning-augmented multi-label emotion classification on KOTE.

Step 1 (``generate.py``) asks an LLM to explain each comment's gold emotions; step 2 (``train.py``) fine-tunes
a classifier or generative LM on comment (+ reasoning); ``evaluate.py`` scores checkpoints honestly.
"""

__version__ = "0.1.0"
