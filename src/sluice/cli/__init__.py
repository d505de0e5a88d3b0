"""The ``sluice`` command line (Typer + Rich).

Commands talk to the store only through :class:`sluice.backend.Backend`, never
SQL, so they work the same against the embedded store and a Sluice server.
"""
