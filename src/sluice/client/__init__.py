"""Prefect's ``prefect.client`` import paths, for code that annotates with them.

Sluice has no separate client object model: the records the engine and the
store use are the ones these modules name (see :mod:`sluice.client.schemas`).
"""
