"""Golden values for the parametric image-MLP family (tasks/parametric/image_mlp.py and
parametric_utils.py), made with the REAL learned_optimization (../shared/reference-harness).

    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_mlp.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_mlp.py --mode partitionable

Writes test/golden/<mode>/parametric_image_mlp.json:
  samplers      SampleActivation.sample, SampleInitializer.sample, ParametricImageMLP.sample and
                sample_image_mlp (as a plain {obj, kwargs} tree, LogFeature as {"LogFeature": v})
                for PRNGKey(0..n)
  inits         task_fn(cfg).init(PRNGKey(1)) for every initializer index (init_scale 1.3)
  losses        loss and gradient on a fixed batch (in the file) for every activation index
The Fashion-MNIST datasets come from the harness's TFDS stand-in; only their shapes are used.
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

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, cfg_plain, flat, restore_numpy_product, save  # noqa: E402

restore_numpy_product()
from learned_optimization.tasks.datasets import image  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_mlp as pimage_mlp  # noqa: E402
from learned_optimization.tasks.parametric import parametric_utils as pu  # noqa: E402




K = jax.random.PRNGKey
samplers = {
    "SampleActivation": [int(pu.SampleActivation.sample(K(i))["index"]) for i in range(12)],
    "SampleInitializer": [{k: as_json(v) for k, v in pu.SampleInitializer.sample(K(i)).items()} for i in range(12)],
    "ParametricImageMLP.sample": [],
    "sample_image_mlp": [cfg_plain(pimage_mlp.sample_image_mlp(K(i))) for i in range(40)],
}

datasets = image.fashion_mnist_datasets(batch_size=4, image_size=(4, 4))
family = pimage_mlp.ParametricImageMLP(datasets, 10, (8, 8))  # 16x8 (tall), 8x8 (square), 8x10 (wide) weights
for i in range(6):
  cfg = family.sample(K(i))
  samplers["ParametricImageMLP.sample"].append(
      {"activation": as_json(cfg.values["activation"]["index"]),
       "initializer": {k: as_json(v) for k, v in cfg.values["initializer"].items()}})


def task_params(act_index, init_index, init_scale=1.3):
  return cfgobject.CFGNamed("ParametricImageMLP", {
      "initializer": {"index": jnp.asarray(init_index, jnp.int32), "init_scale": jnp.asarray(init_scale, jnp.float32)},
      "activation": {"index": jnp.asarray(act_index, jnp.int32)},
  })


inits = {}
for j in range(len(pu.SampleInitializer.inits)):
  inits[str(j)] = flat(family.task_fn(task_params(0, j)).init(K(1)))

# A fixed batch: 8x8 images in [0, 1) and labels, deterministic and independent of jax's keys.
rs = np.random.RandomState(123)
batch = {"image": rs.uniform(size=(4, 4, 4, 1)).astype(np.float32), "label": np.array([3, 0, 9, 5], np.int32)}
losses = {}
for a in range(len(pu.SampleActivation.acts)):
  task = family.task_fn(task_params(a, 2))
  params = task.init(K(2))
  loss, grad = jax.value_and_grad(task.loss)(params, K(3), batch)
  losses[str(a)] = {"params": flat(params), "loss": as_json(loss), "grad": flat(grad),
                    "normalizer([-1, 0.5, 3, 100, nan])": as_json(task.normalizer(jnp.array([-1.0, 0.5, 3.0, 100.0, jnp.nan])))}

save(os.path.join(GOLDEN_DIR, args.mode), "parametric_image_mlp.json",
     {"samplers": samplers, "inits": inits, "batch": {k: as_json(v) for k, v in batch.items()}, "losses": losses},
     "tools/reference/golden_parametric_image_mlp.py")
