"""A stand-in for ``python -m affectlab.experiments fit`` that keeps the local sweep agent's contract in ~0.1 s.

It reads ``--key=value`` arguments like the CLI, writes one ``metrics.json`` history entry per
"epoch" into ``--trainer.default_root_dir`` (file name from ``--trainer.callbacks.init_args.filename``),
stops early when the stop file appears, and can crash on request. Parameters: ``--score``
(the val/acc of every epoch), ``--epochs``, ``--sleep`` (seconds per epoch), ``--crash``.
It records its argv and environment in ``stub.json`` and appends its run folder's name to
``$STUB_STARTS`` so tests can count how often each trial ran.
"""

import json
import os
import sys
import time
from pathlib import Path

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run_dir = Path(args["trainer.default_root_dir"])
metrics = run_dir / args.get("trainer.callbacks.init_args.filename", "metrics.json")
stop = run_dir / args.get("trainer.callbacks.init_args.stop_file", "STOP")
run_dir.mkdir(parents=True, exist_ok=True)
(run_dir / "stub.json").write_text(json.dumps({"argv": sys.argv[1:], "group": os.environ.get("WANDB_RUN_GROUP"),
                                              "sweep_params": os.environ.get("WANDB_SWEEP_PARAM_PATH")}))
if os.environ.get("STUB_STARTS"):
    with open(os.environ["STUB_STARTS"], "a") as f:
        f.write(run_dir.name + "\n")
if args.get("crash") == "True":
    print("stub trial: crashing as asked", file=sys.stderr)
    sys.exit(3)
history = []
for epoch in range(int(args.get("epochs", 3))):
    time.sleep(float(args.get("sleep", 0)))
    history.append({"epoch": epoch, "step": epoch, "val/acc": float(args.get("score", 0.5))})
    metrics.write_text(json.dumps({"history": history}))
    if stop.exists():
        break
payload = {"history": history, "final": history[-1]}
if args.get("test_after_fit") == "true":  # what --test_after_fit adds: test metrics per level and branch
    score = float(args.get("score", 0.5))
    payload["test"] = {"test/acc_l1": score, "test/acc_l1_global": score, "test/acc_l1_local": score / 2,
                       "test/acc_l2": score / 4, "test/violation_rate": 0.1}
metrics.write_text(json.dumps(payload))
