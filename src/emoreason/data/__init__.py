"""KOTE rows: reading and downloading (kote), splits and the seed sample (sampling), batches (datamodule)."""
