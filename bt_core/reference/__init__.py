"""Reference figures from outside the project: published results (``published_results.toml``)."""
