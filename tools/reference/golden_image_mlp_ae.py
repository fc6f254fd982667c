"""Golden values for the MLP autoencoder tasks (tasks/fixed/image_mlp_ae.py), made with the REAL
learned_optimization (../shared/reference-harness; Fashion-MNIST through its TFDS stand-in).

    $REF_DIR/venv/bin/python tools/reference/golden_image_mlp_ae.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_image_mlp_ae.py --mode partitionable

Writes test/golden/<mode>/image_mlp_ae.json: for ImageMLPAE_FashionMnist_128x32x128_bs128, init
(PRNGKey(0)), and loss and gradient on a fixed batch of 3 images (in the file), and the normalizer
on a few values.
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
from golden_common import GOLDEN_DIR, as_json, flat, save  # noqa: E402
from learned_optimization.tasks.fixed import image_mlp_ae  # noqa: E402

rs = np.random.RandomState(11)
batch = {"image": rs.uniform(size=(3, 28, 28, 1)).astype(np.float32), "label": np.array([4, 1, 8], np.int32)}
out = {"batch": {k: as_json(v) for k, v in batch.items()}}
for name in ["ImageMLPAE_FashionMnist_128x32x128_bs128"]:
  task = getattr(image_mlp_ae, name)()
  params = task.init(jax.random.PRNGKey(0))
  loss, grad = jax.value_and_grad(task.loss)(params, jax.random.PRNGKey(1), batch)
  out[name] = {"init": flat(params), "loss": as_json(loss), "grad": flat(grad),
               "normalizer([-1, 0.25, 3])": as_json(task.normalizer(jnp.array([-1.0, 0.25, 3.0])))}
save(os.path.join(GOLDEN_DIR, args.mode), "image_mlp_ae.json", out, "tools/reference/golden_image_mlp_ae.py")
