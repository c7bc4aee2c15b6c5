"""``python -m nnflow runs|snapshot|compare|headline|stages``: see :mod:`nnflow.compare.cli`."""

import sys

from nnflow.compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
