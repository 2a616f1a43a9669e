"""Reading suites of run records: statistics, the study, figures, the report."""
