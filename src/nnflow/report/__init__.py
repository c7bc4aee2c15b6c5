"""Tables, figures and captions of the trained experiments.

- :mod:`.tables`: tidy per-epoch metrics, summary rows and the environment table
- :mod:`.figures`: one comparison figure, its numbers and its caption per experiment
- :mod:`.captions`: caption templates rendered with measured numbers
- :mod:`.drawing`: atomic, byte-reproducible PNG + PDF output (matplotlib Agg)
"""
