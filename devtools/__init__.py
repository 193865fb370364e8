"""Developer tooling: private PostgreSQL/Redis servers, `make dev` orchestration (never imported by the app)."""
