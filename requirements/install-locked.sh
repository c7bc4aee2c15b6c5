#!/bin/sh
# Install the locked environment: every distribution of the lock at its pinned version,
# every downloaded file checked against the lock's sha256 (pip refuses a file it has no
# hash for, so the lock must also be complete). Used by `make venv` and by the container
# recipe (container/nnflow.def), so both install the same way; nnflow itself is not
# installed here.
#   usage: sh requirements/install-locked.sh PYTHON LOCK
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: $0 PYTHON LOCK (e.g. .venv/bin/python requirements/lock.txt)" >&2
    exit 2
fi
python=$1
lock=$2
if [ ! -f "$lock" ]; then
    echo "$0: lock file $lock not found" >&2
    exit 2
fi
digest=$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$lock")
echo "installing the locked environment from $lock (sha256 $digest)"
"$python" -m pip install --quiet --require-hashes -r "$lock"
"$python" -m pip check
