"""Luw's workspace, kept per key: boards (folders, media) and personas (their training images)."""
