"""CIFAR sheet Aufgabe 12: hyperlink matrices, their spectra and PageRank.

- :mod:`.graphs`: edge lists (literal or files), generators, closed classes
- :mod:`.ranking`: hyperlink matrix, eigenvalues, plain iteration, Google matrix, power iteration
- :mod:`.analysis`: the computing jobs (graph spec -> CSV/JSON)
- :mod:`.figures`: the plots
- :mod:`.report`: the report jobs (analysis files -> figures and captions)
"""
