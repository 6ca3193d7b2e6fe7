"""The change feed: what changed in the database, told to whoever waits on it, without polling."""
