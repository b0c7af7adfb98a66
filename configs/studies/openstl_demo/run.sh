#!/usr/bin/env bash
# The multi-task comparison run entirely through OpenSTL's own tools/train.py (docs/openstl.md, "The
# comparison, measured"): UniSTD, the multi-task TAU and SimVP v2 jointly on multi_demo, and OpenSTL's own
# TAU once per task, all at 800 training sequences per task and 2 epochs (equal samples per task).
# Run from an OpenSTL clone (or pass --openstl-root); results land in work/<name>/.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
COMMON="--epoch 2 -b 16 -vb 32 --num_workers 1 --device cpu --data_root data --res_dir work"
train() { python -m openstl_unistd.openstl_train "$@" $COMMON; }
train -d multi_demo -m unistd -c "$HERE/unistd.py" --min_lr 1e-5 --ex_name unistd
train -d multi_demo -m multitask_tau -c "$HERE/multitask_tau.py" --min_lr 1e-5 --ex_name multitask_tau
train -d multi_demo -m multitask_simvp -c "$HERE/multitask_simvp.py" --min_lr 1e-5 --ex_name multitask_simvp
for task in demo_digits demo_advection demo_traffic; do
    train -d "$task" -m tau -c "$HERE/tau.py" --ex_name "tau_$task"
done
