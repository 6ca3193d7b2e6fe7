"""The web playground served at `/`: static files shipped in this package, no build step."""
