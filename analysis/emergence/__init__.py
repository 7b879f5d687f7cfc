"""The emergence analysis: per task x metric a sigmoid in scale (sigmoid) against smooth models (smooth), the
numbers a verdict rests on (evidence, with each size's measured noise (noise) and the largest step between
neighbouring sizes (jump)), the one rule that turns them into a verdict (rule), bootstrap intervals
(bootstrap), the metric-artifact test per task (artifact), what a metric is (kinds), table checks (points),
one orchestrator (run), the command line (cli) and the figures (plots).
Imports nothing of analysis.loss."""
