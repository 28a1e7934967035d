"""A realistic benchmark province for PostgreSQL (``xinfang bench-data``).

Seeded and COPY-based: tenants and their root units go through the services,
every bulk row (org tree, users, role assignments, cases with their events,
deadlines and counters) goes in with ``COPY`` as the database owner. See
:func:`backend.benchdata.generator.generate` and docs/performance.md.
"""

from backend.benchdata.generator import generate

__all__ = ["generate"]
