"""The demo (``xinfang seed-demo``): three cities with months of work behind them, loaded
through the domain services relative to today (see seed.py and the README's user table)."""
