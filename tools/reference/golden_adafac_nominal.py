"""Golden values of the reference's MLPNomLOpt (learned_optimizers/adafac_nominal.py), lopt-ts's
AdafacNominal, made with the REAL learned_optimization (see make_golden.py for the environment).

    $REF_DIR/venv/bin/python tools/reference/golden_adafac_nominal.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_adafac_nominal.py --mode partitionable

($REF_DIR is ~/.cache/lopt-reference here.) Writes test/golden/<mode>/adafac_nominal.json:

  "<ctor>.init(PRNGKey(k))"  the flat θ of init(PRNGKey(k)) for a few configurations (the default,
                             a smaller MLP, and the scalar-weights layout make_separate_weights)
  params0, grads             golden_common's UPDATE_PARAMS0 and update_grads()
  "<case>"                   {"config": the constructor's keyword arguments, "theta": flat θ,
                              "states": the flat optimizer state after each of 3 updates
                              (golden_common.run_updates: num_steps=100, loss=0.5)}

The update cases: the defaults with θ = init(PRNGKey(0)) (nominal_stepsize=0 and weight_decay=0 make
the nominal and decay terms vanish there), then configurations that switch every other branch of
_mod on: the nominal step with each grad estimator, weight decay, the controllers on and off, the aggregated step and
nominal magnitudes, both black-box normalisations, and the scalar-math path (concat_weights=False) with
full and with per-scalar weights, and an MLP without hidden layers. ("aggregate_reg_magnitude_init_error" records that
aggregate_reg_magnitude=True cannot even init: a quirk lopt-ts keeps.) Those use θ from another key with the decay offsets set to
nonzero values (written into the file), so the learned decays are exercised too.
"""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "test", "golden"))
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)

import jax.numpy as jnp  # noqa: E402
from golden_common import flat, run_updates, save, update_grads, UPDATE_PARAMS0  # noqa: E402
from learned_optimization.learned_optimizers import adafac_nominal  # noqa: E402

OUT = os.path.join(args.out, args.mode)


def ctor(config):
  inner = ",".join(f"{k}={v!r}" for k, v in config.items())
  return f"AdafacNominal({inner})"


def jsonable(config):
  return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


out = {}

# init(key) for a few configurations.
INITS = [
    ({}, 0),
    ({}, 5),
    ({"hidden_size": 8, "hidden_layers": 1}, 3),
    ({"initial_momentum_decays": (0.5, 0.9), "initial_rms_decays": (0.99,),
      "initial_adafactor_decays": (0.9,)}, 1),
    ({"concat_weights": False, "make_separate_weights": True, "hidden_size": 2, "hidden_layers": 1}, 0),
]
for config, seed in INITS:
  theta = adafac_nominal.MLPNomLOpt(**config).init(jax.random.PRNGKey(seed))
  out[f"{ctor(config)}.init(PRNGKey({seed}))"] = flat(theta)

# 3 updates.
out["params0"] = flat(UPDATE_PARAMS0)
out["grads"] = [flat(g) for g in update_grads()]

ACTIVE = {"nominal_stepsize": 0.01, "weight_decay": 0.1, "exp_mult": (0.5, 0.3, 0.2),
          "nominal_controller": True, "regularization_controller": True}
PASSIVE = {"nominal_stepsize": 0.01, "weight_decay": 0.1, "exp_mult": (0.5, 0.3, 0.2)}
UPDATES = [
    ({}, 0, False),
    (ACTIVE, 1, True),
    # without the controllers: nom_magnitude is ones (so the step is scaled by exp(exp_mult[1])),
    # reg_magnitude zeros (reg = 1 - weight_decay)
    (dict(PASSIVE, nominal_grad_estimator="SGD"), 1, True),
    (dict(PASSIVE, nominal_grad_estimator="SGDM"), 1, True),
    (dict(PASSIVE, nominal_grad_estimator="AggMo"), 1, True),
    (dict(PASSIVE, nominal_grad_estimator="Adam"), 1, True),
    (dict(ACTIVE, aggregate_magnitude=True, aggregate_nom_magnitude=True), 1, True),
    (dict(ACTIVE, normalize_blackbox=True), 1, True),
    (dict(ACTIVE, selfnormalize_blackbox=True), 1, True),
    (dict(ACTIVE, concat_weights=False), 1, True),
    (dict(ACTIVE, hidden_layers=0), 1, True),  # the output layer alone: no relu anywhere
    (dict(ACTIVE, concat_weights=False, make_separate_weights=True, hidden_size=2, hidden_layers=1), 2, True),
]
for config, seed, perturb in UPDATES:
  lopt = adafac_nominal.MLPNomLOpt(**config)
  theta = lopt.init(jax.random.PRNGKey(seed))
  if perturb:
    theta = dict(theta)
    theta["momentum_decays"] = jnp.asarray([0.1, -0.2, 0.05], jnp.float32)
    theta["rms_decays"] = jnp.asarray([-0.1], jnp.float32)
    theta["adafactor_decays"] = jnp.asarray([0.2, 0.0, -0.1], jnp.float32)
  name = ctor(config) if seed == 0 and not perturb else f"{ctor(config)} theta=init(PRNGKey({seed}))+decays"
  out[name] = {"config": jsonable(config), "theta": flat(theta),
               "states": run_updates(lopt.opt_fn(theta), num_steps=100, loss=0.5)}

# Quirk: aggregate_reg_magnitude=True makes `reg` a scalar that _mod then reshapes to p.shape, which
# fails for every leaf of more than one value, and init always runs _mod on a fake 10x10 leaf.
try:
  adafac_nominal.MLPNomLOpt(aggregate_reg_magnitude=True).init(jax.random.PRNGKey(0))
  out["aggregate_reg_magnitude_init_error"] = None
except TypeError as e:
  out["aggregate_reg_magnitude_init_error"] = str(e)

save(OUT, "adafac_nominal.json", out, "tools/reference/golden_adafac_nominal.py")
