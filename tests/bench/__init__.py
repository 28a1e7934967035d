"""Benchmarks (PostgreSQL); not collected by pytest."""

import backend.domains  # noqa: F401 — every table and hook in place, as in the app
