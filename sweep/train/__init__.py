"""One run's training on one device (torch only): model, loop, FLOPs, checkpoints. No Ray, no Hydra."""
