"""What a sweep is asked to do: the config schema, its keys and the checks made before anything launches."""
