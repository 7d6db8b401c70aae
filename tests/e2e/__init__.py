"""Browser end-to-end tests against a real Home Assistant (scripts/e2e)."""
