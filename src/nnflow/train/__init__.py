"""Training orchestration: configuration -> runs -> one run's files.

- :mod:`.grid`: an experiment's grid, search and seeds expanded into runs
- :mod:`.run`: one run from its spec to metrics, model and ``run.json``
"""
