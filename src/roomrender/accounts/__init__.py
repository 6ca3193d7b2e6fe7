"""API keys, credits, limits and fetch slots: who may ask for what."""
