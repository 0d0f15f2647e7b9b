"""KOTE rows: reading and downloading (kote), splits and the seed sample (sampling), batches (batching) and
the encoding cache; no method (the data module that uses them is ``emoreason.training.datamodule``)."""
