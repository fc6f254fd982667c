"""Golden values of NNAdam (learned_optimizers/nn_adam.py) from the real learned_optimization.

Run in the reference environment (jax, dm-haiku, learned_optimization), once per random mode:

    $REF_DIR/venv/bin/python tools/reference/golden_nn_adam.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_nn_adam.py --mode partitionable

(here REF_DIR is ~/.cache/lopt-reference). Writes test/golden/<mode>/nn_adam.json with:
  "NNAdam().init(PRNGKey(0))", "NNAdam(small).init(PRNGKey(3))"
            init(key) of NNAdam() from PRNGKey(0) and of a smaller, re-configured NNAdam from
            PRNGKey(3) (SMALL below, also written as "small_config"): the θ trees, keystr-flattened
  params0, grads
            golden_common's params tree and the gradients of its 3 updates
  NNAdam    the whole state after each of 3 updates (num_steps=100, loss=0.5) from
            θ = NNAdam().init(PRNGKey(0)) (the first init above, not repeated). Its output
            layer starts at zero, so the hyper-parameters do not move: the Adam-like step and
            the LSTM state are all this case checks.
  NNAdam(lstm_hidden_size=8,output_scale=0.5,decay_strength=0.1)+perturbed
            the same updates from θ = init(PRNGKey(1)) of that NNAdam (hidden size 8 keeps the
            file small) whose LSTM-to-controls layer and LSTM initial state are filled
            deterministically (perturbed_theta) and written into the file ("theta"), so the learned
            hyper-parameter changes, the decay back to the initial values and the clipping
            transforms are exercised too.
  transforms
            the three hyper-parameter transforms (inverse, and inverse then forward) on a grid of
            19 values from -3 to 1.5, past every clip bound
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

jax = setup_mode(args.mode)

import numpy as np  # noqa: E402
import flax  # noqa: E402
from golden_common import GOLDEN_DIR, flat, run_updates, save, update_grads, UPDATE_PARAMS0  # noqa: E402
from learned_optimization.learned_optimizers import nn_adam  # noqa: E402

OUT = os.path.join(args.out or GOLDEN_DIR, args.mode)
MADE_BY = "tools/reference/golden_nn_adam.py"

SMALL = dict(lstm_hidden_size=8, initial_learning_rate=3e-3, initial_beta1=0.8,
             initial_beta2=0.99, initial_epsilon=1e-6, output_scale=0.1)


def perturbed_theta(lopt, key):
  """θ = lopt.init(key) with a nonzero output layer and LSTM initial state: values on a fixed grid
  (sin of the element index), independent of the random mode except through init's own draws."""
  theta = flax.core.unfreeze(lopt.init(key))
  h = lopt.lstm_hidden_size
  w = np.sin(np.arange(h * 4, dtype=np.float32) * 0.37).reshape(h, 4).astype(np.float32) * 0.8
  b = np.array([0.3, -0.5, 0.4, 0.6], np.float32)
  theta["rnn_to_controls_params"]["rnn_to_controls"]["w"] = jax.numpy.asarray(w)
  theta["rnn_to_controls_params"]["rnn_to_controls"]["b"] = jax.numpy.asarray(b)
  st = theta["lstm_init_state"]
  hid = np.cos(np.arange(h, dtype=np.float32) * 0.61).reshape(1, h).astype(np.float32) * 0.5
  cell = np.sin(np.arange(h, dtype=np.float32) * 0.23 + 0.1).reshape(1, h).astype(np.float32)
  theta["lstm_init_state"] = type(st)(hidden=jax.numpy.asarray(hid), cell=jax.numpy.asarray(cell))
  return flax.core.freeze(theta)


k0 = jax.random.PRNGKey(0)
out = {
    "NNAdam().init(PRNGKey(0))": flat(nn_adam.NNAdam().init(k0)),
    "NNAdam(small).init(PRNGKey(3))": flat(nn_adam.NNAdam(**SMALL).init(jax.random.PRNGKey(3))),
    "small_config": SMALL,
    "params0": flat(UPDATE_PARAMS0),
    "grads": [flat(g) for g in update_grads()],
}

lopt = nn_adam.NNAdam()
theta = lopt.init(k0)
out["NNAdam"] = {"states": run_updates(lopt.opt_fn(theta), num_steps=100, loss=0.5)}

lopt = nn_adam.NNAdam(lstm_hidden_size=8, output_scale=0.5, decay_strength=0.1)
theta = perturbed_theta(lopt, jax.random.PRNGKey(1))
out["NNAdam(lstm_hidden_size=8,output_scale=0.5,decay_strength=0.1)+perturbed"] = {
    "theta": flat(theta), "states": run_updates(lopt.opt_fn(theta), num_steps=100, loss=0.5)}

# The hyper-parameter transforms on a grid reaching past every clip bound: inverse (the value
# used) and tree_inverse_forward (the clipped parameter written back into the state).
grid = np.linspace(-3.0, 1.5, 19).astype(np.float32)
out["transforms"] = {"x": grid.tolist()}
for name, tr in [("scaled_lr", nn_adam._scaled_lr), ("scaled_epsilon", nn_adam._scaled_epsilon),
                 ("scaled_one_minus_log", nn_adam._scaled_one_minus_log)]:
  out["transforms"][name] = {"inverse": np.asarray(tr.inverse(grid)).tolist(),
                             "inverse_forward": np.asarray(tr.tree_inverse_forward(grid)).tolist()}

save(OUT, "nn_adam.json", out, MADE_BY)
