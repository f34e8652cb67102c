"""Analysis stage: statistics, estimates, comparisons and the report's analyses."""
