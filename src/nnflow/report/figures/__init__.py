"""The comparison figures of the training experiments, one module per figure kind.

- :mod:`.common`: tidy tables, seed bands, peaks, wording and drawing helpers
- one module per kind (:data:`nnflow.report.kinds.FIGURE_KINDS`), each with
  ``build(tidy, analysis, extra) -> (figure, numbers)``
"""
