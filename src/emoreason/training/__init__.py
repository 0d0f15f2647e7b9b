"""The LightningModule and DataModule, callbacks, loggers, strategies and the memory planner."""
