"""What drives training: config, set-up, the training loop, resume, run-folder records, progress, loggers, sweeps."""
