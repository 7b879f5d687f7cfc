"""A distributed scaling-sweep orchestrator: cli on top, then config, plan, driver, and store, train and tasks below."""
