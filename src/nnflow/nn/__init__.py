"""The network library: NumPy only (a test enforces it).

- :mod:`.layers`: CS231n-style ``*_forward -> (out, cache)`` / ``*_backward`` layers
- :mod:`.costs`: network2's quadratic and cross-entropy costs, L2 in both conventions
- :mod:`.initializers`: network2's default/large, weight scale, He, Xavier
- :mod:`.optim`: update rules ``update(w, dw, config) -> (next_w, config)``
- :mod:`.network2`: Nielsen's ``network2`` API, vectorised over the mini-batch
- :mod:`.network2_io`: saving and loading network2 Networks (also Nielsen's JSON files)
- :mod:`.fc_net` and :mod:`.solver`: CS231n's ``FullyConnectedNet`` and ``Solver``
- :mod:`.model_io`: models as ``.npz`` + JSON (never pickle)
- :mod:`.gradcheck`: centred-difference gradient checks
"""
