"""The result store: the one schema, atomic files, all-or-nothing transactions, DuckDB, provenance."""
