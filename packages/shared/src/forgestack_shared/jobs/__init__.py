"""Typed payloads and results, one module per job."""
