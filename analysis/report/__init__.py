"""A sweep's analysis as a report: the one orchestrator (pipeline), its sections, the fits table, the page."""
