#!/bin/sh
# sweep.sh NAME ARGS... : one training run of cmd/train on the validation
# split, timed by /usr/bin/time -v (CPU time beside wall time), into
# runs/sweep/NAME. The binary is built once into runs/train-bin.
# Choose settings on val_accuracy only; the test figure is read once, for
# the final runs.
set -e
cd "$(dirname "$0")/.."
name=$1
shift
bin=${TRAIN_BIN:-runs/train-bin}
mkdir -p runs/sweep
[ -x "$bin" ] || go build -o "$bin" ./cmd/train
out=runs/sweep/$name
rm -rf "$out"
mkdir -p "$out"
echo "load before: $(cat /proc/loadavg)" >"$out/load.txt"
/usr/bin/time -v "$bin" -q -out "$out" "$@" >"$out/stdout.txt" 2>"$out/stderr.txt"
echo "load after: $(cat /proc/loadavg)" >>"$out/load.txt"
