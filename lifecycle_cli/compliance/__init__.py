"""Compliance (``lifecycle check``): who is overdue, stuck, mis-staged or missing data."""
