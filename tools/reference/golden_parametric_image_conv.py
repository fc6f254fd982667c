"""Golden values for the parametric convnet family (tasks/parametric/image_conv.py), made with the
REAL learned_optimization (../shared/reference-harness; Fashion-MNIST through its TFDS stand-in).

    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_conv.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_conv.py --mode partitionable

Writes test/golden/<mode>/parametric_image_conv.json: sample_image_conv (as {obj, kwargs}) for
PRNGKey(0..29); and, for ParametricImageConv over Fashion-MNIST 6x6 with hidden (4, 5), kernels 3x3
and strides (2, 1): the family's sample for PRNGKey(0..5), and for every initializer (with a few
activations) init(PRNGKey(2)), loss and gradient on a fixed batch (in the file), the normalizer.
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
from learned_optimization.tasks.datasets import image  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_conv as pconv  # noqa: E402

restore_numpy_product()
K = jax.random.PRNGKey
family = pconv.ParametricImageConv(image.fashion_mnist_datasets(batch_size=3, image_size=(6, 6)), 10,
                                   hidden_sizes=(4, 5), kernel_sizes=((3, 3), (3, 3)), strides=(2, 1))
samples = []
for i in range(6):
  v = family.sample(K(i)).values
  samples.append({"activation": int(v["activation"]["index"]), "init_index": int(v["initializer"]["index"]),
                  "init_scale": as_json(v["initializer"]["init_scale"])})

rs = np.random.RandomState(3)
batch = {"image": rs.uniform(size=(3, 6, 6, 1)).astype(np.float32), "label": np.array([2, 9, 0], np.int32)}
cases = []
for init_index, act in zip(range(5), [0, 4, 10, 6, 8]):
  cfg = cfgobject.CFGNamed("ParametricImageConv", {
      "initializer": {"index": jnp.asarray(init_index, jnp.int32), "init_scale": jnp.asarray(0.8, jnp.float32)},
      "activation": {"index": jnp.asarray(act, jnp.int32)}})
  task = family.task_fn(cfg)
  params = task.init(K(2))
  loss, grad = jax.value_and_grad(task.loss)(params, K(3), batch)
  cases.append({"init_index": init_index, "activation": act, "init": flat(params), "loss": as_json(loss), "grad": flat(grad),
                "normalizer([-1, 0.5, 3, 100])": as_json(task.normalizer(jnp.array([-1.0, 0.5, 3.0, 100.0])))})

save(os.path.join(GOLDEN_DIR, args.mode), "parametric_image_conv.json",
     {"samplers": {"ParametricImageConv.sample": samples, "sample_image_conv": [cfg_plain(pconv.sample_image_conv(K(i))) for i in range(30)]},
      "batch": {k: as_json(v) for k, v in batch.items()}, "cases": cases},
     "tools/reference/golden_parametric_image_conv.py")
