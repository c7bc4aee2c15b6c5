"""One update-rule call per step for all of a model's parameters: the Solver's fused update.

The update rules of :mod:`nnflow.nn.optim` are elementwise: the new value of a parameter
entry depends only on that entry, its gradient and its own optimiser state, and on the
config's scalars (``learning_rate``, ``momentum``, ``t``, ...). When every parameter's
config holds the same scalars (the Solver gives each parameter a copy of ``optim_config``
and updates them alike), one call on the parameters laid end to end in one array computes
bit for bit what one call per parameter computes, with a quarter of the Python overhead
for a two-layer net.

:class:`FlatUpdate` keeps that layout: one array for the parameters, one for their
gradients, one per state array (``velocity``, ``cache``, ``m``, ``v``), each parameter a
view of its block (blocks start on 64-byte boundaries, the gaps hold zeros, which every
rule keeps at zero). ``model.params[name]`` and ``optim_configs[name][key]`` ARE those
views while training runs, so they always show the current values; :meth:`FlatUpdate.begin`
copies in whatever was rebound since (a restored best epoch, a resumed checkpoint, an
edited config) and :meth:`FlatUpdate.end` writes the flat config's scalars (``t``, the
defaults the rule filled in) back into every parameter's config.
"""

from __future__ import annotations

import numpy as np

from nnflow.nn import optim

__all__ = ["FlatUpdate", "ELEMENTWISE_RULES"]

# The rules whose update of an entry depends on that entry (and the config's scalars) only,
# and which only read the dw they are given. Named one by one: a rule added to the registry
# later (which may use norms over a whole parameter) is called per parameter.
ELEMENTWISE_RULES = (optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam)
_ALIGN_BYTES = 64


def _split(config):
    """``config``'s public scalars and the names of its public state arrays."""
    scalars, arrays = {}, []
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            arrays.append(key)
        else:
            scalars[key] = value
    return scalars, sorted(arrays)


class FlatUpdate:
    """The parameters ``names`` of ``params`` laid end to end, updated by one ``rule`` call.

    Parameters
    ----------
    rule : one of :data:`ELEMENTWISE_RULES`.
    params : the model's parameter dict (its arrays are copied into the layout by
        :meth:`begin`); every array of the same floating dtype.
    names : the parameter names, in the order of the layout.
    """

    def __init__(self, rule, params, names):
        if rule not in ELEMENTWISE_RULES:
            raise ValueError(f"FlatUpdate: rule must be one of {ELEMENTWISE_RULES}, got {rule!r}")
        self.rule = rule
        self.names = list(names)
        self.dtype = params[self.names[0]].dtype
        align = max(_ALIGN_BYTES // self.dtype.itemsize, 1)
        self.blocks, size = {}, 0
        for name in self.names:
            shape = params[name].shape
            count = int(np.prod(shape, dtype=np.int64))
            self.blocks[name] = (size, count, shape)
            size += -(-count // align) * align
        self.size = size
        self.weights = np.zeros(size, dtype=self.dtype)
        self.gradients = np.zeros(size, dtype=self.dtype)
        self.weight_views = self.views(self.weights)
        self.gradient_views = self.views(self.gradients)
        self.config = {}

    @staticmethod
    def fits(rule, params, names):
        """Whether a :class:`FlatUpdate` can stand for per-parameter calls of ``rule``."""
        if rule not in ELEMENTWISE_RULES or not names:
            return False
        dtypes = {params[name].dtype for name in names}
        return len(dtypes) == 1 and np.issubdtype(next(iter(dtypes)), np.floating)

    def views(self, flat):
        """Each parameter's block of the flat array ``flat``, shaped like the parameter."""
        return {name: flat[start:start + count].reshape(shape)
                for name, (start, count, shape) in self.blocks.items()}

    def begin(self, params, configs):
        """Bind ``params`` and ``configs`` to the layout; False if they cannot share one call.

        They cannot when the configs' scalars or state keys differ between parameters, or
        a state array is not an array of its parameter's shape and dtype: the caller then
        calls the rule per parameter (views of the layout are ordinary arrays to it).
        """
        scalars, keys = _split(configs[self.names[0]])
        for name in self.names:
            own_scalars, own_keys = _split(configs[name])
            if own_keys != keys or own_scalars != scalars:
                return False
            shape, dtype = self.blocks[name][2], self.dtype
            if any(configs[name][k].shape != shape or configs[name][k].dtype != dtype
                   for k in keys) or params[name].shape != shape or params[name].dtype != dtype:
                return False
        for name in self.names:
            if params[name] is not self.weight_views[name]:
                self.weight_views[name][...] = params[name]
                params[name] = self.weight_views[name]
        for key in [k for k in self.config if not k.startswith("_")]:
            if key not in scalars and key not in keys:
                del self.config[key]
        self.config.update(scalars)
        for key in keys:
            flat = self.config.get(key)
            if flat is None:
                flat = self.config[key] = np.zeros(self.size, dtype=self.dtype)
            views = self.views(flat)
            for name in self.names:
                if configs[name][key] is not views[name]:
                    views[name][...] = configs[name][key]
                    configs[name][key] = views[name]
        return True

    def step(self):
        """One call of the rule on the whole layout (gradients in :attr:`gradients`)."""
        next_w, self.config = self.rule(self.weights, self.gradients, self.config)
        if next_w is not self.weights:  # a rule that does not update in place
            self.weights[...] = next_w

    def end(self, configs):
        """Put the flat config into every parameter's config: scalars, and state as views."""
        scalars, keys = _split(self.config)
        for key in keys:
            for name, view in self.views(self.config[key]).items():
                configs[name][key] = view
        for name in self.names:
            configs[name].update(scalars)
