"""One run's training on one device (torch only, no Ray, no Hydra): model, start, steps, loop, FLOPs, checkpoints."""
