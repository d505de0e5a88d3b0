"""The compatibility suite: flows written the way Prefect's documentation writes them
(with ``prefect`` imports), ported with the three replacements of
``docs/from-prefect.md`` and run as a user runs them (``python script.py``), each
checked against the outcome Prefect documents.

Where Sluice differs on purpose (see ``docs/from-prefect.md``), the test says so
and checks Sluice's documented outcome instead.
"""
