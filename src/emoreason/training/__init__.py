"""The LightningModule, callbacks, loggers, strategies and the memory planner."""
