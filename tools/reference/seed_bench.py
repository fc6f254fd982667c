"""Outer steps per second of the REAL learned_optimization on the seed's two configurations.

Run by `npm run bench -- --reference PYTHON` (apps/runner/src/bench.ts), alternating with lopt-ts,
or by hand; it needs the environment of ../shared/reference-harness (jax, learned_optimization).
CI never runs it.

  A = the notebook's first loop: SingleMachineGradientLearner, MLPLOpt, TruncatedPES(50),
      LogUniformLengthSchedule(100, 300), 4 tasks per family, offset 300, Adam(1e-3), the key reused;
  B = the second loop: a GradientLearner fed by gradient_worker_compute, 16 tasks per family, the
      key split at every step.

    $REF_DIR/venv/bin/python tools/reference/seed_bench.py --config A --warmup 3 --steps 20

Prints one JSON line: {"config", "warmup", "steps", "seconds_to_first_step", "steps_per_sec"}.
The first step compiles (about 18 s for A, 33 s for B on a 2-core machine) and is never timed.
"""
import argparse
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True, choices=["A", "B"])
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--steps", type=int, default=20)
args = parser.parse_args()
if args.warmup < 1:
  raise SystemExit("--warmup must be at least 1: the first step compiles")

started = time.time()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import jax  # noqa: E402

jax.config.update("jax_threefry_partitionable", False)  # as the notebook ran

from learned_optimization.learned_optimizers import mlp_lopt  # noqa: E402
from learned_optimization.optimizers import base as opt_base  # noqa: E402
from learned_optimization.outer_trainers import gradient_learner  # noqa: E402
from learned_optimization.outer_trainers import lopt_truncated_step  # noqa: E402
from learned_optimization.outer_trainers import truncated_pes  # noqa: E402
from learned_optimization.outer_trainers import truncation_schedule  # noqa: E402
from learned_optimization.tasks import base as tasks_base  # noqa: E402
from learned_optimization.tasks import quadratics  # noqa: E402
from learned_optimization.tasks.fixed import image_mlp  # noqa: E402

num_tasks = 4 if args.config == "A" else 16
lopt = mlp_lopt.MLPLOpt()
schedule = truncation_schedule.LogUniformLengthSchedule(min_length=100, max_length=300)
families = [quadratics.FixedDimQuadraticFamily(10),
            tasks_base.single_task_to_family(image_mlp.ImageMLP_FashionMnist8_Relu32())]
estimators = [
    truncated_pes.TruncatedPES(
        truncated_step=lopt_truncated_step.VectorizedLOptTruncatedStep(
            f, lopt, schedule, num_tasks=num_tasks, random_initial_iteration_offset=300),
        trunc_length=50)
    for f in families
]
key = jax.random.PRNGKey(0)

if args.config == "A":
  learner = gradient_learner.SingleMachineGradientLearner(lopt, estimators, opt_base.Adam(1e-3))
  state = learner.init(key)

  def step():
    global state
    state, _, _ = learner.update(state, key, with_metrics=False)
    jax.block_until_ready(state)
else:
  central = gradient_learner.GradientLearner(lopt, opt_base.Adam(1e-3))
  central_state = central.init(key)
  weights = central.get_state_for_worker(central_state)
  unroll_states = [e.init_worker_state(weights, key=jax.random.fold_in(key, i)) for i, e in enumerate(estimators)]

  def step():
    global central_state, unroll_states, key
    weights = central.get_state_for_worker(central_state)
    key1, key = jax.random.split(key)
    out = gradient_learner.gradient_worker_compute(weights, estimators, unroll_states, key=key1, with_metrics=False)
    unroll_states = out.unroll_states
    key1, key = jax.random.split(key)
    central_state, _ = central.update(central_state, [out.to_put], key=key1)
    jax.block_until_ready((central_state, unroll_states))

step()
first = time.time() - started
for _ in range(args.warmup - 1):
  step()
t0 = time.time()
for _ in range(args.steps):
  step()
seconds = time.time() - t0
print(json.dumps({"config": args.config, "warmup": args.warmup, "steps": args.steps,
                  "seconds_to_first_step": first, "steps_per_sec": args.steps / seconds}), flush=True)
