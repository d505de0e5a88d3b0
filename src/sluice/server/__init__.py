"""The Sluice API server: a thin HTTP face over the store and the services.

Importing this package imports nothing heavy; FastAPI and uvicorn are loaded
by :mod:`sluice.server.app` (``sluice server start``), never by the engine.
"""
