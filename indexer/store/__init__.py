"""ClickHouse storage: connection, migrations, the batch writer and checkpoints."""
