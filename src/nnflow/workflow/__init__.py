"""The bridge between Snakemake and the package.

- :mod:`.jobs`: the context a ``workflow/scripts/*.py`` body runs in (log, thread limits)
"""
