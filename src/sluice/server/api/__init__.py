"""The API's routers, one module per resource (see docs/api.md)."""
