"""Theory stages without training data.

- :mod:`.unstable`: Blatt 10 Aufgabe 26, the sigmoid' bound, interval length, log-normal model
- :mod:`.complex_net`: backpropagation for complex-valued nets (Wirtinger calculus)
- :mod:`.figures`: their figures
- :mod:`.unstable_job`, :mod:`.complex_job`: the two rules' jobs (config -> numbers, figures, caption)
"""
