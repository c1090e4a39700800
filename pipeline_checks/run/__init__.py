"""One seeded training run per pipeline and seed, shared by every check."""
