"""The embedded local stack used by ``make run`` and the tests: PostgreSQL, blobs, HTTP server."""
