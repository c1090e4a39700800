"""For tests: tiny image datasets, the photographs, small models, hypothesis strategies."""
