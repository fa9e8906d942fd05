"""PostgreSQL adapter: connections, migrations and the SQL behind each service (pg8000)."""
