"""What checks return (CheckResult), the terminal summary and the report files."""
