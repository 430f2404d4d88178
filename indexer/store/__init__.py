"""ClickHouse storage: connection, migrations, streams and their leases, the batch writer, the change feed."""
