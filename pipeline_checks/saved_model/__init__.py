"""Diagnosing a saved model: loading it safely, reading image folders, the diagnose library."""
