"""Analysis of result files: loading (results), summaries (stats), report, compare."""
