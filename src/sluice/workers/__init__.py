"""Workers: processes that claim the due runs of a work pool and execute each in a subprocess.

- :mod:`sluice.workers.execute`: run one existing flow run by id (the subprocess's entry).
- :mod:`sluice.workers.process`: one flow-run subprocess (launch, cancel, reap).
- :mod:`sluice.workers.worker`: the worker loop (claim, launch, heartbeat, cancel, shut down).

Nothing here is imported by ``import sluice``.
"""
