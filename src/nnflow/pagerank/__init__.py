"""CIFAR sheet Aufgabe 12: hyperlink matrices, their spectra and PageRank.

- :mod:`.graphs`: edge lists (literal or files), generators, closed classes
- :mod:`.ranking`: hyperlink matrix, eigenvalues, plain iteration, Google matrix, power iteration
- :mod:`.figures`: figures and tables of the analysis
"""
