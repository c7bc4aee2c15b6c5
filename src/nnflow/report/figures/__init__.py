"""The comparison figures of the training experiments, one module per figure kind.

- :mod:`.common`: tidy tables, seed bands, peaks, wording and drawing helpers
- one module per kind (:data:`nnflow.report.experiment.FIGURE_KINDS`), each with
  ``numbers(tidy, analysis, **extra)`` and ``figure(tidy, analysis, numbers, **extra)``
"""
