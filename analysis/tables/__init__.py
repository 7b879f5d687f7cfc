"""Reading: a results directory's grids and run tables, the tables a user hands the command line, unusable rows."""
