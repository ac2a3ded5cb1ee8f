#!/bin/sh
# eval-envs.sh MODEL: scores MODEL with cmd/eval under its own recipe and
# with every elementwise op in each of the five environments, as README's
# table (markdown rows).
set -e
cd "$(dirname "$0")/.."
model=$1
go build -o runs/eval-bin ./cmd/eval
echo "| elementwise environment | test accuracy | mean cross-entropy | served by |"
echo "|---|---|---|---|"
for env in "" IEEE FTZ DAZ FTZ_DAZ ARM_FZ; do
	if [ -z "$env" ]; then
		runs/eval-bin -model "$model" -json
	else
		runs/eval-bin -model "$model" -env "$env" -json
	fi
done | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    name = r["element_env"] + (" (the recipe'"'"'s own: " + r["recipe"] + ")" if r["recipe"] == r["trained_recipe"] else "")
    how = "this CPU (" + r["backend"] + ")" if r["element_env_native"] else "the exact reference"
    print("| %s | %.2f%% | %.4f | %s |" % (name, 100 * r["test_accuracy"], r["test_loss"], how))
'
