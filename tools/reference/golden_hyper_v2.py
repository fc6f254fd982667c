"""Golden values for HyperV2 (research/general_lopt/hyper_v2.py, VeLO's architecture), made with the
REAL learned_optimization. Run twice:

    $REF_DIR/venv/bin/python tools/reference/golden_hyper_v2.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_hyper_v2.py --mode partitionable

Writes test/golden/<mode>/hyper_v2.json:
  <config>.init(PRNGKey(0))
           init(PRNGKey(0)) of HyperV2 with its defaults and with the VeLO configuration (the
           config.gin of pretrained_optimizers' aug12_... default: lstm_hidden_size=512,
           param_inits=256, use_bugged_loss_features=False).
  params0, grads, and per case the whole optimizer state after each of golden_common's 3 updates
           (num_steps=100, loss=0.5), θ = that configuration's init(PRNGKey(0)).
           (the LSTM state of the VeLO configuration: head + checksums.)
  "HyperV2 (params file)": the same 3 updates with θ read back by checkpoints.load_state from
           test/golden/hyper_v2_params.msgpack.

and, in legacy mode only, test/golden/hyper_v2_params.msgpack: a `params` file exactly as
pretrained_optimizers / opt_from_checkpoint load it (checkpoints.save_state of
gradient_learner.ParameterCheckpoint(θ, "", 0), flax msgpack), θ = HyperV2().init(PRNGKey(1)) made
in legacy mode. The partitionable run reads the same file.

To keep the file small, arrays of more than 256 (θ) or 512 (states) values are written as their
first 32 values and golden_common's checksums (its convention, with a shorter head).

HyperV2's update splits the `key` it is given (it is handed to the per-parameter MLP's haiku apply,
which draws nothing), so the updates here pass PRNGKey(0); the result does not depend on it.
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

PARAMS_FILE = os.path.join(GOLDEN_DIR, "hyper_v2_params.msgpack")
VELO = dict(lstm_hidden_size=512, param_inits=256, use_bugged_loss_features=False)


def three_updates(opt, num_steps=100, loss=0.5):
  """golden_common.run_updates, with the key HyperV2's update needs."""
  state = opt.init(UPDATE_PARAMS0, num_steps=num_steps)
  after = []
  for g in update_grads():
    state = opt.update(state, g, loss=np.float32(loss), key=jax.random.PRNGKey(0))
    after.append(compact(state, full_max=512))
  return after


configs = {
    "HyperV2": {},
    "HyperV2(lstm_hidden_size=512,param_inits=256,use_bugged_loss_features=False)": VELO,
    # a larger step (same θ) so the params change well above float rounding
    "HyperV2(step_mult=0.1)": dict(step_mult=0.1),
}

out = {"params0": flat(UPDATE_PARAMS0), "grads": [flat(g) for g in update_grads()]}
for name, kw in configs.items():
  lopt = hyper_v2.HyperV2(**kw)
  theta = lopt.init(jax.random.PRNGKey(0))
  if name != "HyperV2(step_mult=0.1)":
    out[f"{'HyperV2()' if name == 'HyperV2' else name}.init(PRNGKey(0))"] = compact(theta, full_max=256)
  out[name] = {"states": three_updates(lopt.opt_fn(theta))}

if args.mode == "legacy":
  theta = hyper_v2.HyperV2().init(jax.random.PRNGKey(1))
  checkpoints.save_state(PARAMS_FILE, gradient_learner.ParameterCheckpoint(theta, "", 0))
  print("wrote", os.path.relpath(PARAMS_FILE), os.path.getsize(PARAMS_FILE), "bytes", flush=True)

lopt = hyper_v2.HyperV2()
template = gradient_learner.ParameterCheckpoint(lopt.init(jax.random.PRNGKey(0)), "", 0)
loaded = checkpoints.load_state(PARAMS_FILE, template)
out["HyperV2 (params file)"] = {"states": three_updates(lopt.opt_fn(loaded.params))}

save(os.path.join(GOLDEN_DIR, args.mode), "hyper_v2.json", out, "tools/reference/golden_hyper_v2.py")
