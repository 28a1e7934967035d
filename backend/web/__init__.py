"""The HTTP layer shared by every route: authentication, rate limits, errors, REST routes."""
