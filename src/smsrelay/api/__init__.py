"""HTTP API: thin FastAPI routes, schemas and the error-to-HTTP table."""
