"""What users declare: a Pipeline, and the pipelines a project declares in pyproject.toml."""
