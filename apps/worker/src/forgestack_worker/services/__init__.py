"""Clients and helpers the handlers call: email rendering and delivery, ..."""
