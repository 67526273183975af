"""The rules compiled to SQL, and the SQL engines (DuckDB, Spark) that run them."""
