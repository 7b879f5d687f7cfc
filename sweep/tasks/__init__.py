"""Evaluation tasks: synthetic generators, corpus loaders, tokenizers and task metrics, behind one registry."""
