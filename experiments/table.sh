#!/bin/sh
# table.sh [DIR...]: validation accuracy, wall and CPU time of sweep runs.
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- runs/sweep/*
for d in "$@"; do
	[ -f "$d/summary.json" ] || { echo "$(basename "$d"): (running or failed)"; continue; }
	python3 - "$d" <<'PY'
import json, re, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
err = open(d + "/stderr.txt").read()
def t(k):
    m = re.search(k + r": ([0-9.]+)", err)
    return float(m.group(1)) if m else float("nan")
cpu = t("User time \\(seconds\\)") + t("System time \\(seconds\\)")
print("%-28s val %.2f%%  loss %.4f  train %.2f%%  steps %6d  wall %5.0fs  cpu %5.0fs" % (
    d.split("/")[-1], 100 * s.get("val_accuracy", float("nan")), s.get("val_loss", float("nan")),
    100 * s["train_accuracy"], s["steps"], s["wall_seconds"], cpu))
PY
done
