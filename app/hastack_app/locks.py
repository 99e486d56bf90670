"""Advisory lock keys. Postgres advisory locks share one keyspace per database, so the
app keeps all of its keys here, in a range that spells "hastack" in its high bytes."""

MIGRATION_LOCK = 0x68617374_00000001
MAINTENANCE_LOCK = 0x68617374_00000002
