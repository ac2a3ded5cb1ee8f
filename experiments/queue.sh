#!/bin/sh
# queue.sh FILE: runs the sweep lines of FILE (NAME ARGS... per line), two
# at a time (the machine has two cores and is shared).
cd "$(dirname "$0")/.."
xargs -P 2 -L 1 experiments/sweep.sh <"$1"
