"""Small helpers shared across the engine."""
