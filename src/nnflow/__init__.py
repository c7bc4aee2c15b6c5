"""nnflow: how neural networks learn, reproduced with NumPy and Snakemake.

The network library (``layers``, ``costs``, ``init``, ``optim``, ``network2``,
``fc_net``, ``solver``) depends on NumPy only; the data stage, the experiments
and the figures are used by the Snakemake workflow.
"""

__version__ = "0.1.0"
