"""Make lopt-ts's golden test values with the REAL learned_optimization.

Needs the reference environment of ../shared/reference-harness (its README sets it up: jax,
dm-haiku, learned_optimization from source). lopt-ts's tests and CI never run this script; they
read the JSON it wrote, committed under test/golden/<mode>/.

    $REF_DIR/venv/bin/python tools/reference/make_golden.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/make_golden.py --mode partitionable

--mode picks jax's random-number scheme before anything draws a number: `legacy` is
jax_threefry_partitionable=False (jax < 0.5, what the reference's notebooks ran with),
`partitionable` is True (jax >= 0.5's default).

Files written (each also records the versions that made it under "_meta"):
  random.json        jax.random samplers on fixed keys (odd sizes too: the legacy scheme pads)
  inits.json         init(key) of every task and learned optimizer lopt-ts has
  updates.json       3 updates of each learned optimizer (θ from its own init(PRNGKey(0))) and of
                     Adam(1e-3) on a tree with a matrix, a vector and a scalar leaf
  seed_part1.json    the seed notebook's part 1 (SingleMachineGradientLearner, PRNGKey(0)):
                     the whole initial state of both estimators, and 3 outer updates of the
                     quadratic estimator alone (losses and θ after each)

Array convention: {"shape", "dtype", "values"} with float32 values held exactly by a Python
float (JSON round-trips them) and integers as ints; an array of more than 10,000 values is written
as "head" (its first 256 values) and "checksum" (float64 sums of x, |x| and x_i*((i mod 97)+1)).
Trees are flattened with jax's keystr paths.
"""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "test", "golden"))
parser.add_argument("--only", default="random,inits,updates,seed")
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

# Must precede every draw: it changes split, bits and everything built on them.
jax = setup_mode(args.mode)

import numpy as np  # noqa: E402
from golden_common import as_json, flat, key_data, run_updates, update_grads, UPDATE_PARAMS0  # noqa: E402
from golden_common import save as save_in  # noqa: E402
from learned_optimization.learned_optimizers import adafac_mlp_lopt  # noqa: E402
from learned_optimization.learned_optimizers import base as lopt_base  # noqa: E402
from learned_optimization.learned_optimizers import mlp_lopt  # noqa: E402
from learned_optimization.optimizers import base as opt_base  # noqa: E402
from learned_optimization.outer_trainers import gradient_learner  # noqa: E402
from learned_optimization.outer_trainers import lopt_truncated_step  # noqa: E402
from learned_optimization.outer_trainers import truncated_pes  # noqa: E402
from learned_optimization.outer_trainers import truncation_schedule  # noqa: E402
from learned_optimization.tasks import base as tasks_base  # noqa: E402
from learned_optimization.tasks import quadratics  # noqa: E402
from learned_optimization.tasks.fixed import image_mlp  # noqa: E402

OUT = os.path.join(args.out, args.mode)
WHAT = set(args.only.split(","))


def save(name, body):
  save_in(OUT, name, body, "tools/reference/make_golden.py")


# ------------------------------------------------------------------------------------------------
if "random" in WHAT:
  k0 = jax.random.PRNGKey(0)
  k7 = jax.random.PRNGKey(7)
  big = jax.random.PRNGKey(2**40 + 5)  # a seed above 32 bits keeps its high word
  r = jax.random
  cases = {
      "PRNGKey(0)": k0,
      "PRNGKey(2**40+5)": big,
      "split(PRNGKey(0))": r.split(k0),
      "split(PRNGKey(0),3)": r.split(k0, 3),
      "split(PRNGKey(7),5)": r.split(k7, 5),
      "fold_in(PRNGKey(0),1)": r.fold_in(k0, 1),
      "fold_in(PRNGKey(7),123456)": r.fold_in(k7, 123456),
      "bits(PRNGKey(0),(5,))": r.bits(k0, (5,)),
      "bits(PRNGKey(7),(2,3))": r.bits(k7, (2, 3)),
      "uniform(PRNGKey(0),(5,))": r.uniform(k0, (5,)),
      "uniform(PRNGKey(7),(7,),-3,2)": r.uniform(k7, (7,), minval=-3.0, maxval=2.0),
      "normal(PRNGKey(0),(5,))": r.normal(k0, (5,)),
      "normal(PRNGKey(7),(2,3))": r.normal(k7, (2, 3)),
      "truncated_normal(PRNGKey(0),-2,2,(5,))": r.truncated_normal(k0, -2.0, 2.0, (5,)),
      "truncated_normal(PRNGKey(7),-1,3,(7,))": r.truncated_normal(k7, -1.0, 3.0, (7,)),
      "randint(PRNGKey(0),(7,),0,10)": r.randint(k0, (7,), 0, 10),
      "randint(PRNGKey(7),(5,),-5,300)": r.randint(k7, (5,), -5, 300),
      "permutation(PRNGKey(0),10)": r.permutation(k0, 10),
      "permutation(PRNGKey(7),33)": r.permutation(k7, 33),
      "bernoulli(PRNGKey(0),0.3,(7,))": r.bernoulli(k0, 0.3, (7,)),
  }
  save("random.json", {name: as_json(key_data(v) if v.dtype == np.uint32 else v)
                       for name, v in cases.items()})

# ------------------------------------------------------------------------------------------------
if "inits" in WHAT:
  k0 = jax.random.PRNGKey(0)
  k3 = jax.random.PRNGKey(3)
  out = {}
  # Learned optimizers (haiku-built θ, and the hand-written ones).
  out["MLPLOpt().init(PRNGKey(0))"] = flat(mlp_lopt.MLPLOpt().init(k0))
  out["MLPLOpt(hidden_size=8,hidden_layers=1).init(PRNGKey(3))"] = flat(
      mlp_lopt.MLPLOpt(hidden_size=8, hidden_layers=1).init(k3))
  out["AdafacMLPLOpt().init(PRNGKey(0))"] = flat(adafac_mlp_lopt.AdafacMLPLOpt().init(k0))
  out["LearnableSGD().init(PRNGKey(0))"] = flat(lopt_base.LearnableSGD().init(k0))
  out["LearnableSGDM().init(PRNGKey(0))"] = flat(lopt_base.LearnableSGDM().init(k0))
  out["LearnableAdam().init(PRNGKey(0))"] = flat(lopt_base.LearnableAdam().init(k0))
  # Tasks.
  for name in ["ImageMLP_FashionMnist8_Relu32", "ImageMLP_FashionMnist16_Relu32",
               "ImageMLP_FashionMnist_Relu128x128"]:
    out[f"{name}().init(PRNGKey(0))"] = flat(getattr(image_mlp, name)().init(k0))
  out["QuadraticTask().init(PRNGKey(0))"] = flat(quadratics.QuadraticTask().init(k0))
  out["NoisyMeanQuadraticTask().init(PRNGKey(0))"] = flat(quadratics.NoisyMeanQuadraticTask().init(k0))
  out["BatchQuadraticTask().init(PRNGKey(0))"] = flat(quadratics.BatchQuadraticTask().init(k0))
  out["LogQuadraticTask().init(PRNGKey(0))"] = flat(quadratics.LogQuadraticTask().init(k0))
  out["SumQuadraticTask().init(PRNGKey(0))"] = flat(quadratics.SumQuadraticTask().init(k0))
  for fam_name, fam in [("FixedDimQuadraticFamily(10)", quadratics.FixedDimQuadraticFamily(10)),
                        ("FixedDimQuadraticFamilyData(10)", quadratics.FixedDimQuadraticFamilyData(10)),
                        ("NoisyQuadraticFamily(10,0.1)", quadratics.NoisyQuadraticFamily(10, 0.1))]:
    param = fam.sample(jax.random.PRNGKey(1))
    out[f"{fam_name}.sample(PRNGKey(1))"] = flat(param)
    out[f"{fam_name}.task_fn(sample(PRNGKey(1))).init(PRNGKey(2))"] = flat(
        fam.task_fn(param).init(jax.random.PRNGKey(2)))
  save("inits.json", out)

# ------------------------------------------------------------------------------------------------
if "updates" in WHAT:
  def run(opt):
    return run_updates(opt, num_steps=100)

  cases = {
      "MLPLOpt": mlp_lopt.MLPLOpt(),
      "AdafacMLPLOpt": adafac_mlp_lopt.AdafacMLPLOpt(),
      "LearnableSGD": lopt_base.LearnableSGD(),
      "LearnableSGDM": lopt_base.LearnableSGDM(),
      "LearnableAdam": lopt_base.LearnableAdam(),
  }
  out = {"params0": flat(UPDATE_PARAMS0), "grads": [flat(g) for g in update_grads()]}
  for name, lopt in cases.items():
    theta = lopt.init(jax.random.PRNGKey(0))
    out[name] = {"theta": flat(theta), "states": run(lopt.opt_fn(theta))}
  out["Adam(1e-3)"] = {"states": run(opt_base.Adam(1e-3))}
  save("updates.json", out)

# ------------------------------------------------------------------------------------------------
if "seed" in WHAT:

  def learner(families):
    """The seed notebook's part 1, with a choice of task families."""
    lopt = mlp_lopt.MLPLOpt()
    sched = truncation_schedule.LogUniformLengthSchedule(min_length=100, max_length=300)
    estimators = []
    for fam in families:
      step = lopt_truncated_step.VectorizedLOptTruncatedStep(
          fam, lopt, sched, num_tasks=4, random_initial_iteration_offset=300)
      estimators.append(truncated_pes.TruncatedPES(truncated_step=step, trunc_length=50))
    return gradient_learner.SingleMachineGradientLearner(lopt, estimators, opt_base.Adam(1e-3))

  key = jax.random.PRNGKey(0)
  both = learner([quadratics.FixedDimQuadraticFamily(10),
                  tasks_base.single_task_to_family(image_mlp.ImageMLP_FashionMnist8_Relu32())])
  init_both = both.init(key)

  quad = learner([quadratics.FixedDimQuadraticFamily(10)])
  state = quad.init(key)
  steps = []
  for _ in range(3):  # the notebook reuses `key` for every update
    state, loss, _ = quad.update(state, key, with_metrics=False)
    steps.append({"loss": float(loss),
                  "theta": flat(state.gradient_learner_state.theta_opt_state.params)})
  save("seed_part1.json", {
      "init_state(both estimators)": flat(init_both),
      "quadratic_only_updates": steps,
  })
