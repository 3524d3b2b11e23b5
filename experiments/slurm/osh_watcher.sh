#!/bin/bash
# Live W&B sync for offline runs on compute nodes without internet: start the wandb-osh watcher on
# the LOGIN node (which reaches W&B) before or after submitting. It polls the communication folder
# and runs `wandb sync` on every run folder a job names there after each validation (preset
# experiments/defaults/wandb_osh.yaml, which train.sbatch adds when LIVE_SYNC=1).
#
#   experiments/slurm/osh_watcher.sh                # start (once; a second call says it is running)
#   LIVE_SYNC=1 sbatch --export=ALL experiments/slurm/train.sbatch experiments/mdan/fi.yaml --data.root /data/FI
#   experiments/slurm/osh_watcher.sh stop           # when the jobs are done
#
# OSH_COMMAND_DIR (default ~/.wandb_osh_command_dir) must be on a file system the compute nodes
# share with the login node; train.sbatch passes the same folder to the jobs. The watcher's log is
# $OSH_COMMAND_DIR/watcher.log. Without the watcher nothing is lost: the runs stay in
# runs/<name>/<job id>/wandb/ and `wandb sync runs/<name>/<job id>/wandb/offline-run-*` uploads them.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -f .venv/bin/activate ]]; then source .venv/bin/activate; fi
DIR=${OSH_COMMAND_DIR:-$HOME/.wandb_osh_command_dir}
mkdir -p "$DIR"
PIDFILE="$DIR/watcher.pid"
running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if [[ "${1:-start}" == stop ]]; then
    if running; then kill "$(cat "$PIDFILE")" && rm -f "$PIDFILE" && echo "wandb-osh stopped"; else echo "wandb-osh is not running"; fi
    exit 0
fi
if running; then
    echo "wandb-osh already running (pid $(cat "$PIDFILE")), watching $DIR"
    exit 0
fi
WANDB_MODE=online nohup wandb-osh --command-dir "$DIR" --wait "${OSH_WAIT:-10}" >> "$DIR/watcher.log" 2>&1 &
echo $! > "$PIDFILE"
echo "wandb-osh started (pid $!), watching $DIR; log: $DIR/watcher.log"
