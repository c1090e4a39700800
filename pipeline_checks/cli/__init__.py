"""The `pipeline-checks` console script: the suite, diagnose and first-report commands."""
