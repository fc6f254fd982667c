"""The reference's seed notebook, part 1, from PRNGKey(0): print the first outer losses.

For comparison with `examples/seed-part5.mts` (docs/reproducibility.md). Needs the environment of
../shared/reference-harness; CI never runs it.

    $REF_DIR/venv/bin/python tools/reference/seed_losses.py --mode legacy --tasks quadratic --steps 10
    $REF_DIR/venv/bin/python tools/reference/seed_losses.py --mode legacy --tasks quadratic,fmnist --steps 10
"""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--mode", choices=["legacy", "partitionable"], default="legacy")
parser.add_argument("--tasks", default="quadratic,fmnist")
parser.add_argument("--steps", type=int, default=10)
args = parser.parse_args()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import jax  # noqa: E402

jax.config.update("jax_threefry_partitionable", args.mode == "partitionable")

from learned_optimization.learned_optimizers import mlp_lopt  # noqa: E402
from learned_optimization.optimizers import base as opt_base  # noqa: E402
from learned_optimization.outer_trainers import gradient_learner  # noqa: E402
from learned_optimization.outer_trainers import lopt_truncated_step  # noqa: E402
from learned_optimization.outer_trainers import truncated_pes  # noqa: E402
from learned_optimization.outer_trainers import truncation_schedule  # noqa: E402
from learned_optimization.tasks import base as tasks_base  # noqa: E402
from learned_optimization.tasks import quadratics  # noqa: E402
from learned_optimization.tasks.fixed import image_mlp  # noqa: E402

FAMILIES = {
    "quadratic": lambda: quadratics.FixedDimQuadraticFamily(10),
    "fmnist": lambda: tasks_base.single_task_to_family(image_mlp.ImageMLP_FashionMnist8_Relu32()),
}
lopt = mlp_lopt.MLPLOpt()
schedule = truncation_schedule.LogUniformLengthSchedule(min_length=100, max_length=300)
estimators = [
    truncated_pes.TruncatedPES(
        truncated_step=lopt_truncated_step.VectorizedLOptTruncatedStep(
            FAMILIES[name](), lopt, schedule, num_tasks=4, random_initial_iteration_offset=300),
        trunc_length=50)
    for name in args.tasks.split(",")
]
learner = gradient_learner.SingleMachineGradientLearner(lopt, estimators, opt_base.Adam(1e-3))
key = jax.random.PRNGKey(0)
state = learner.init(key)
losses = []
for _ in range(args.steps):  # the notebook passes the same key to every update
  state, loss, _ = learner.update(state, key, with_metrics=False)
  losses.append(float(loss))
print("single machine losses:", " ".join(f"{l:.6f}" for l in losses))
