"""Benchmarks (PostgreSQL); not collected by pytest."""
