"""Golden values for the VeLO prefab (research/general_lopt/prefab.py, `LearnedOptimizer`), made with
the REAL learned_optimization. Run twice:

    $REF_DIR/venv/bin/python tools/reference/golden_velo.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_velo.py --mode partitionable

The prefab's default base optimizer is the pretrained VeLO checkpoint on GCS, which is not
available here; `base_lopt_fn` is instead HyperV2() with θ read by checkpoints.load_state from the
reference-written params file test/golden/hyper_v2_params.msgpack (tools/reference/golden_hyper_v2.py),
which exercises the same wrappers: gradient accumulation when num_training_steps >
max_training_steps (GradientAccumulator) and weight decay (WeightDecayWrapper).

Writes test/golden/<mode>/velo.json: params0, grads and, per case, the whole prefab state after
each of golden_common's 3 updates (init with num_steps = num_training_steps, loss = 0.5; arrays over
512 values as a 32-value head and checksums, as golden_hyper_v2.py).
"""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)

import numpy as np  # noqa: E402
from golden_common import GOLDEN_DIR, flat, save, update_grads, UPDATE_PARAMS0  # noqa: E402
from golden_hyper_v2_compact import compact  # noqa: E402
from learned_optimization import checkpoints  # noqa: E402
from learned_optimization.outer_trainers import gradient_learner  # noqa: E402
from learned_optimization.research.general_lopt import hyper_v2  # noqa: E402
from learned_optimization.research.general_lopt import prefab  # noqa: E402

PARAMS_FILE = os.path.join(GOLDEN_DIR, "hyper_v2_params.msgpack")

lopt = hyper_v2.HyperV2()
template = gradient_learner.ParameterCheckpoint(lopt.init(jax.random.PRNGKey(0)), "", 0)
theta = checkpoints.load_state(PARAMS_FILE, template).params


def base_lopt_fn():
  return lopt.opt_fn(theta)


cases = {
    "VeLO(num_training_steps=100,weight_decay=0.01)": dict(num_training_steps=100, weight_decay=0.01),
    "VeLO(num_training_steps=200,weight_decay=0.1,max_training_steps=100)":
        dict(num_training_steps=200, weight_decay=0.1, max_training_steps=100),
    "VeLO(num_training_steps=250,max_training_steps=100)": dict(num_training_steps=250, max_training_steps=100),
}

out = {"params0": flat(UPDATE_PARAMS0), "grads": [flat(g) for g in update_grads()]}
for name, kw in cases.items():
  opt = prefab.LearnedOptimizer(base_lopt_fn=base_lopt_fn, **kw)
  state = opt.init(UPDATE_PARAMS0, num_steps=kw["num_training_steps"])
  states = []
  for g in update_grads():
    state = opt.update(state, g, loss=np.float32(0.5))
    states.append(compact(state, full_max=512))
  out[name] = {"states": states}

save(os.path.join(GOLDEN_DIR, args.mode), "velo.json", out, "tools/reference/golden_velo.py")
