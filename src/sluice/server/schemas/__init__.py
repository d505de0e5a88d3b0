"""Names code written for other orchestrators imports from ``...server.schemas``."""
