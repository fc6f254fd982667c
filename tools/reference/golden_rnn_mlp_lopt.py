"""Golden values for RNNMLPLOpt (learned_optimizers/rnn_mlp_lopt.py), made with the REAL reference.

Run it in the reference environment, once per random mode (see test/golden/README.md):

    ~/.cache/lopt-reference/venv/bin/python tools/reference/golden_rnn_mlp_lopt.py --mode legacy
    ~/.cache/lopt-reference/venv/bin/python tools/reference/golden_rnn_mlp_lopt.py --mode partitionable

It writes test/golden/<mode>/rnn_mlp_lopt.json:
  "RNNMLPLOpt().init(PRNGKey(0))", "RNNMLPLOpt(<small>).init(PRNGKey(3))"
             init(key) of the default RNNMLPLOpt and of a small configuration (every size option
             changed), flattened with keystr
  "RNNMLPLOpt(<small>,decays=(0.9,0.99)).init(PRNGKey(1))"
             the reference's init sizes the MLP for 5 decays whatever `decays` holds (37 features
             + lstm_to_ff); its update then fails, so this is an init-only case
  params0, grads
             golden_common's UPDATE_PARAMS0 and update_grads() (the params tree and the gradients)
  RNNMLPLOpt, RNNMLPLOpt(small)
             "states": the whole optimizer state after each of 3 updates
             (golden_common.run_updates: num_steps=100, loss=0.5), θ = the lopt's init at
             PRNGKey(0) / PRNGKey(3) (the init entries above)
  mixed      the default lopt at PRNGKey(0) on a sequence that varies the loss and takes a
             validation step (is_valid=True: only the validation-loss normaliser and the iteration
             move): "steps" lists (gradient index, loss, is_valid), "states" the state after each
"""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
parser.add_argument("--out", default=None)
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)  # before any draw

import numpy as np  # noqa: E402
from golden_common import GOLDEN_DIR, flat, run_updates, save, update_grads, UPDATE_PARAMS0  # noqa: E402
from learned_optimization.learned_optimizers import rnn_mlp_lopt  # noqa: E402

SMALL = dict(hidden_size=8, hidden_layer=1, from_mlp_size=4, from_lstm_size=5, lstm_to_ff=3,
             lstm_hidden_size=6)
SMALL_NAME = ("RNNMLPLOpt(hidden_size=8,hidden_layer=1,from_mlp_size=4,from_lstm_size=5,"
              "lstm_to_ff=3,lstm_hidden_size=6)")

default = rnn_mlp_lopt.RNNMLPLOpt()
small = rnn_mlp_lopt.RNNMLPLOpt(**SMALL)
theta0 = default.init(jax.random.PRNGKey(0))
theta_small = small.init(jax.random.PRNGKey(3))

out = {
    "RNNMLPLOpt().init(PRNGKey(0))": flat(theta0),
    SMALL_NAME + ".init(PRNGKey(3))": flat(theta_small),
    SMALL_NAME[:-1] + ",decays=(0.9,0.99)).init(PRNGKey(1))": flat(
        rnn_mlp_lopt.RNNMLPLOpt(**SMALL, decays=(0.9, 0.99)).init(jax.random.PRNGKey(1))),
    "params0": flat(UPDATE_PARAMS0),
    "grads": [flat(g) for g in update_grads()],
    "RNNMLPLOpt": {"states": run_updates(default.opt_fn(theta0))},
    "RNNMLPLOpt(small)": {"states": run_updates(small.opt_fn(theta_small))},
}

# (index into update_grads(), loss, is_valid)
STEPS = [(0, 0.5, False), (1, 0.8, True), (1, 0.3, False), (2, 1.1, False), (0, 0.6, True), (2, 0.9, False)]
opt = default.opt_fn(theta0)
grads = update_grads()
state = opt.init(UPDATE_PARAMS0, num_steps=100)
states = []
for gi, loss, is_valid in STEPS:
  state = opt.update(state, grads[gi], loss=np.float32(loss), is_valid=is_valid)
  states.append(flat(state))
out["mixed"] = {"steps": [list(s) for s in STEPS], "states": states}

save(os.path.join(args.out or GOLDEN_DIR, args.mode), "rnn_mlp_lopt.json", out,
     "tools/reference/golden_rnn_mlp_lopt.py")
