"""Golden values for the parametric MLP autoencoder family (tasks/parametric/image_mlp_ae.py), made
with the REAL learned_optimization (../shared/reference-harness).

    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_mlp_ae.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_mlp_ae.py --mode partitionable

Writes test/golden/<mode>/parametric_image_mlp_ae.json: ParametricImageMLPAE.sample and
sample_image_mlp_ae (as {obj, kwargs}) for PRNGKey(0..n); and, over Fashion-MNIST 4x4 with hidden
(6,), for every combination of the three switches (log_loss, center_data, constrain_output) with a
few activations: init(PRNGKey(2)), loss and gradient on a fixed batch (in the file), and the
normalizer on a few values.
"""
import argparse
import itertools
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, cfg_plain, flat, restore_numpy_product, save  # noqa: E402
from learned_optimization.tasks.datasets import image  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_mlp_ae as pae  # noqa: E402

restore_numpy_product()




K = jax.random.PRNGKey
family = pae.ParametricImageMLPAE(image.fashion_mnist_datasets(batch_size=4, image_size=(4, 4)), (6,))


def sample_plain(cfg):
  v = cfg.values
  return {"activation": int(v["activation"]["index"]), "init_index": int(v["initializer"]["index"]),
          "init_scale": as_json(v["initializer"]["init_scale"]), "log_loss": bool(v["log_loss"]),
          "center_data": bool(v["center_data"]), "constrain_output": bool(v["constrain_output"])}


samplers = {"ParametricImageMLPAE.sample": [sample_plain(family.sample(K(i))) for i in range(12)],
            "sample_image_mlp_ae": [cfg_plain(pae.sample_image_mlp_ae(K(i))) for i in range(30)]}

rs = np.random.RandomState(5)
batch = {"image": rs.uniform(size=(3, 4, 4, 1)).astype(np.float32), "label": np.array([1, 2, 3], np.int32)}
cases = []
for act, (log_loss, center, constrain) in zip(itertools.cycle([0, 4, 10, 7]), itertools.product([False, True], repeat=3)):
  cfg = cfgobject.CFGNamed("ParametricImageMLP", {
      "initializer": {"index": jnp.asarray(2, jnp.int32), "init_scale": jnp.asarray(1.1, jnp.float32)},
      "activation": {"index": jnp.asarray(act, jnp.int32)},
      "log_loss": jnp.asarray(log_loss), "center_data": jnp.asarray(center), "constrain_output": jnp.asarray(constrain)})
  task = family.task_fn(cfg)
  params = task.init(K(2))
  loss, grad = jax.value_and_grad(task.loss)(params, K(3), batch)
  cases.append({"activation": act, "log_loss": log_loss, "center_data": center, "constrain_output": constrain,
                "init": flat(params), "loss": as_json(loss), "grad": flat(grad),
                "normalizer([-30, 0.001, 0.5, 3])": as_json(task.normalizer(jnp.array([-30.0, 0.001, 0.5, 3.0])))})

save(os.path.join(GOLDEN_DIR, args.mode), "parametric_image_mlp_ae.json",
     {"samplers": samplers, "batch": {k: as_json(v) for k, v in batch.items()}, "cases": cases},
     "tools/reference/golden_parametric_image_mlp_ae.py")
