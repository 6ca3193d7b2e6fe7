"""roomrender: a self-hosted AI interior-design rendering service."""

__version__ = "0.1.0"
