#!/bin/bash
# The torchrun equivalent of train.sbatch, for machines without SLURM.
#
#   One node, 4 GPUs:
#     experiments/slurm/torchrun.sh 4 experiments/mdan/fi.yaml --data.root /data/FI
#   Two nodes (the same command on both; NODE_RANK 0 on the node at MASTER_ADDR, 1 on the other):
#     NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 RUN_ID=mdan1 experiments/slurm/torchrun.sh 4 experiments/mdan/fi.yaml ...
#   DDP on the CPU, two processes (gloo), to check the code path without GPUs (SyncBatchNorm
#   needs GPUs, so it is switched off here):
#     experiments/slurm/torchrun.sh 2 experiments/baseline/demo.yaml -c experiments/defaults/ddp_cpu.yaml \
#         --trainer.sync_batchnorm false
#
# Every process of a launch writes to runs/<name>/<RUN_ID> (torchrun's rendezvous id; a random one
# for a single node); give all nodes the same RUN_ID.
set -euo pipefail
NPROC=${1:?usage: torchrun.sh PROCESSES_PER_NODE CONFIG [affectlab fit arguments...]}
CONFIG=${2:?usage: torchrun.sh PROCESSES_PER_NODE CONFIG [affectlab fit arguments...]}
shift 2
NNODES=${NNODES:-1}
export WANDB_MODE=${WANDB_MODE:-offline}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

if [[ "$NNODES" == 1 ]]; then
    RDZV=(--standalone)
else
    RDZV=(--nnodes "$NNODES" --node-rank "${NODE_RANK:?set NODE_RANK}" --rdzv-backend c10d
          --rdzv-endpoint "${MASTER_ADDR:?set MASTER_ADDR}:${MASTER_PORT:-29500}"
          --rdzv-id "${RUN_ID:?set RUN_ID, the same on every node}")
fi

exec torchrun "${RDZV[@]}" --nproc-per-node "$NPROC" -m affectlab.experiments fit \
    -c "$CONFIG" -c experiments/defaults/ddp.yaml \
    --trainer.num_nodes "$NNODES" --trainer.devices "$NPROC" "$@"
