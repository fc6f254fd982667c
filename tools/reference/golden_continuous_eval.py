"""Golden values of the continuous-evaluation chief's metrics (continuous_eval/run_eval_chief.py,
the `metrics_fn_for_*` of DEFAULT_METRICS_FN) from the real learned_optimization.

Run in the reference environment (random mode does not matter: no random numbers are drawn):

    $REF_DIR/venv/bin/python tools/reference/golden_continuous_eval.py

(REF_DIR is ~/.cache/lopt-reference). Writes test/golden/continuous_eval_metrics.json with:
  jobs      the inputs: per job its name, total_time and curves, as a worker returns them
            (`eval/xs`, `eval/<split>/loss`, `eval/<split>/norm_loss`, `eval/<split>/aux/<name>`,
            one row each: a job trains one task). The values are fixed numbers written here, and
            they are finite because golden JSON cannot hold NaN.
  checkpoint  the task group's checkpoint index
  metrics   every metric the reference's default metric functions compute from them, by name
            (the chief writes them as `<chief_name>/<name>`)

The venv has neither courier nor dill, which only the chief's server needs. Empty stand-in modules
take their place so that run_eval_chief can be imported. Only its pure metric functions are called.
"""
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import GOLDEN_DIR, meta  # noqa: E402

for missing in ("courier", "dill"):
  try:
    __import__(missing)
  except ImportError:
    sys.modules[missing] = types.ModuleType(missing)

import numpy as onp  # noqa: E402
from learned_optimization.continuous_eval import run_eval_chief as rec  # noqa: E402


class Task:
  """What the chief's metric functions read from a task: `task_content = (gin configs, name)`."""

  def __init__(self, name):
    self.task_content = ([], name)


# Three jobs (two seeds of one task, one of another), 4 evaluations each.
JOBS = [
    ("QuadraticTask__0", 1.25, {
        "train": ([4.0, 2.5, 2.0, 1.75], [0.4, 0.25, 0.2, 0.175], [0.1, 0.5, 0.625, 0.75]),
        "outer_valid": ([4.5, 3.0, 2.25, 2.0], [0.45, 0.3, 0.225, 0.2], [0.125, 0.375, 0.5, 0.625]),
    }),
    ("QuadraticTask__1", 0.5, {
        "train": ([3.0, 3.5, 1.0, 1.5], [0.3, 0.35, 0.1, 0.15], [0.25, 0.25, 0.5, 0.875]),
        "outer_valid": ([3.25, 3.75, 1.5, 1.25], [0.325, 0.375, 0.15, 0.125], [0.0, 0.25, 0.5, 0.5]),
    }),
    ("FixedDimQuadraticFamily__0", 2.0, {
        "train": ([10.0, 6.0, 5.0, 5.5], [1.0, 0.6, 0.5, 0.55], [0.0, 0.125, 0.25, 0.375]),
        "outer_valid": ([11.0, 7.0, 6.5, 6.0], [1.1, 0.7, 0.65, 0.6], [0.0, 0.0, 0.125, 0.25]),
    }),
]
CHECKPOINT = 3

values = []
jobs_out = []
for name, total_time, splits in JOBS:
  r = {"total_time": total_time, "step": 40, "gen_id": "g",
       "eval/xs": onp.asarray([[0, 10, 20, 30]])}
  curves = {"eval/xs": [0, 10, 20, 30]}
  for split, (loss, norm, acc) in splits.items():
    r[f"eval/{split}/loss"] = onp.asarray([loss], dtype=onp.float64)
    r[f"eval/{split}/norm_loss"] = onp.asarray([norm], dtype=onp.float64)
    r[f"eval/{split}/aux/acc"] = onp.asarray([acc], dtype=onp.float64)
    curves[f"eval/{split}/loss"] = loss
    curves[f"eval/{split}/norm_loss"] = norm
    curves[f"eval/{split}/aux/acc"] = acc
  values.append(r)
  jobs_out.append({"name": name, "total_time": total_time, "curves": curves})

tasks = [Task(name) for name, _, _ in JOBS]
task_group = (CHECKPOINT, {"params_": "unused"})
metrics = {}
for fn in rec.DEFAULT_METRICS_FN:
  for k, v in fn(task_group, values, tasks).items():
    assert k not in metrics, k
    metrics[k] = float(v)

out = {"jobs": jobs_out, "checkpoint": CHECKPOINT, "metrics": metrics,
       "_meta": {**meta("tools/reference/golden_continuous_eval.py"),
                 "functions": [f.__name__ for f in rec.DEFAULT_METRICS_FN]}}
path = os.path.join(GOLDEN_DIR, "continuous_eval_metrics.json")
with open(path, "w") as f:
  json.dump(out, f, indent=1)
print("wrote", os.path.relpath(path), len(metrics), "metrics")
