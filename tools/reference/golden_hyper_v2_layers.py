"""Golden values for HyperV2 (VeLO's architecture) stepping the weights of a small dense network,
made with the REAL learned_optimization, for the tfjs-layers test
(libs/optimizers/src/__tests__/hyper_v2_layers.golden.test.ts):

    $REF_DIR/venv/bin/python tools/reference/golden_hyper_v2_layers.py

θ is read back by checkpoints.load_state from the reference-written params file
test/golden/hyper_v2_params.msgpack (golden_hyper_v2.py made it). The params are the weights of
tf.layers.dense 'hidden' (5 -> 4) and 'out' (4 -> 3), named as tfjs names its variables
(`<layer>/kernel`, `<layer>/bias`), values from numpy's RandomState(0). Three updates with fixed
gradients G_t (RandomState(1)) and the loss the TypeScript side's `minimize` computes for them,
loss_t = sum over leaves of sum(p_t * G_t) (so d loss / d p = G_t), num_steps=100.

Writes test/golden/legacy/hyper_v2_layers.json: params0, grads, and the params and loss after each
update. HyperV2's update draws no random numbers, so one mode is enough.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode("legacy")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from golden_common import GOLDEN_DIR, flat, save  # noqa: E402
from learned_optimization import checkpoints  # noqa: E402
from learned_optimization.outer_trainers import gradient_learner  # noqa: E402
from learned_optimization.research.general_lopt import hyper_v2  # noqa: E402

SHAPES = {"hidden/kernel": (5, 4), "hidden/bias": (4,), "out/kernel": (4, 3), "out/bias": (3,)}
rs = np.random.RandomState(0)
params0 = {k: rs.normal(size=s).astype(np.float32) * 0.5 for k, s in SHAPES.items()}
rg = np.random.RandomState(1)
grads = [{k: rg.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(3)]

lopt = hyper_v2.HyperV2()
template = gradient_learner.ParameterCheckpoint(lopt.init(jax.random.PRNGKey(0)), "", 0)
theta = checkpoints.load_state(os.path.join(GOLDEN_DIR, "hyper_v2_params.msgpack"), template).params
opt = lopt.opt_fn(theta)

state = opt.init({k: jnp.asarray(v) for k, v in params0.items()}, num_steps=100)
steps = []
for g in grads:
  p = opt.get_params(state)
  loss = jnp.float32(sum(jnp.sum(p[k] * g[k]) for k in sorted(SHAPES)))
  state = opt.update(state, {k: jnp.asarray(v) for k, v in g.items()}, loss=loss, key=jax.random.PRNGKey(0))
  steps.append({"loss": float(loss), "params": flat(opt.get_params(state))})

out = {"params0": flat(params0), "grads": [flat(g) for g in grads], "steps": steps}
save(os.path.join(GOLDEN_DIR, "legacy"), "hyper_v2_layers.json", out, "tools/reference/golden_hyper_v2_layers.py")
