"""The loss analysis: the Chinchilla law L(N, D) fitted (fit), its intervals (bootstrap), the compute-optimal
frontier (allocation, frontier), Approach 2 (isoflop), extrapolation (backtest), one orchestrator used by the
sweep report and the command line alike (run), the command line (cli) and the figures (plots).
Imports nothing of analysis.emergence."""
