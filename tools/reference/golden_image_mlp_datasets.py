"""Golden values of the fixed image-MLP tasks on MNIST and 16x16 ImageNet
(learned_optimization/tasks/fixed/image_mlp.py: ImageMLP_Mnist_128x128x128_Relu and
ImageMLP_Imagenet16_Relu256x256x256; tasks/fixed/image_mlp_ae.py: ImageMLPAE_Mnist_128x32x128_bs128)
for lopt-ts.

    $REF_DIR/venv/bin/python tools/reference/golden_image_mlp_datasets.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_image_mlp_datasets.py --mode partitionable

writes test/golden/<mode>/image_mlp_datasets.json: per task init(PRNGKey(0)), and loss and gradient of
loss(params, PRNGKey(1), batch) on a fixed 2-image batch (made here, in the file), and the normalizer.
image.mnist_datasets / image.imagenet16_datasets are replaced by stand-ins carrying only the abstract
batch and num_classes (all init and loss read). Arrays of more than 256 values: head (32) + checksums.
"""
import argparse
import itertools
import os
import sys
import types

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import golden_common  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, flat, save  # noqa: E402
from learned_optimization.tasks.fixed import image_mlp  # noqa: E402
from learned_optimization.tasks.fixed import image_mlp_ae  # noqa: E402

golden_common.FULL_MAX = 256


def stand_in(num_classes, default_size, channels):
  """abstract batch, num_classes, and a train split of all-zero batches (the autoencoder's init reads
  one for its shape)."""
  def make(batch_size, image_size=default_size, **unused_kwargs):
    image_size = tuple(image_size)
    zeros = {"image": jnp.zeros((batch_size,) + image_size + (channels,), jnp.float32),
             "label": jnp.zeros((batch_size,), jnp.int32)}
    return types.SimpleNamespace(
        train=itertools.repeat(zeros),
        abstract_batch={"image": jax.ShapeDtypeStruct((batch_size,) + image_size + (channels,), jnp.float32),
                        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32)},
        extra_info={"num_classes": num_classes})
  return make


image_mlp.image.mnist_datasets = stand_in(10, (28, 28), 1)
image_mlp.image.imagenet16_datasets = stand_in(1000, (16, 16), 3)
image_mlp_ae.image.mnist_datasets = stand_in(10, (28, 28), 1)


def short(tree):
  for a in tree.values():
    if "head" in a:
      a["head"] = a["head"][:32]
  return tree


out = {}
for mod, name in [(image_mlp, "ImageMLP_Mnist_128x128x128_Relu"), (image_mlp, "ImageMLP_Imagenet16_Relu256x256x256"),
                  (image_mlp_ae, "ImageMLPAE_Mnist_128x32x128_bs128")]:
  task = getattr(mod, name)()
  h, w, c = task.datasets.abstract_batch["image"].shape[1:]
  i = np.arange(2 * h * w * c, dtype=np.float64).reshape(2, h, w, c)
  image = (np.round(16 * (0.5 + 0.5 * np.sin(0.37 * i))) / 16).astype(np.float32)
  batch = {"image": jnp.asarray(image), "label": jnp.asarray(np.array([3, 7], np.int32))}
  params = task.init(jax.random.PRNGKey(0))
  loss, grad = jax.value_and_grad(task.loss)(params, jax.random.PRNGKey(1), batch)
  old = golden_common.FULL_MAX
  golden_common.FULL_MAX = 1 << 30
  b = {k: as_json(v) for k, v in batch.items()}
  golden_common.FULL_MAX = old
  out[name] = {"init": short(flat(params)), "batch": b, "loss": as_json(loss), "grad": short(flat(grad)),
               "normalizer([-1, 0.5, 3, 100])": as_json(task.normalizer(jnp.array([-1.0, 0.5, 3.0, 100.0])))}
save(os.path.join(GOLDEN_DIR, args.mode), "image_mlp_datasets.json", out, "tools/reference/golden_image_mlp_datasets.py")
