"""The analysis of a scaling sweep from its tables alone: the loss law, emergence, and the report."""
