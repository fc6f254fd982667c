"""Golden values of the convnet tasks (learned_optimization/tasks/fixed/conv.py) for lopt-ts.

    $REF_DIR/venv/bin/python tools/reference/golden_conv.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_conv.py --mode partitionable

writes test/golden/<mode>/conv.json. For every fixed conv task of conv.py, and for lopt-ts's
Fashion-MNIST variants (the reference's own `_ConvTask(_cross_entropy_pool_loss(...))` on a
Fashion-MNIST-shaped batch), it records:
  init         init_with_state(PRNGKey(0))'s params
  init_state   its model state (batchnorm tasks; {} otherwise)
  batch        the key into "batches" of its small deterministic batch (2 images, made here, not
               from any dataset; one per image shape, shared by the tasks of that shape)
  loss, grad   loss_with_state(params, init_state, PRNGKey(1), batch) and its gradient w.r.t. params
  state        the model state that call returns

The reference's datasets need TFDS, which this environment lacks: the task constructors are
To keep the file small, arrays of more than 256 values are written as head + checksums
(golden_common's convention, with FULL_MAX lowered from 10000 and the head cut to 32 values); the
batches are written whole.

The task constructors are called with image.cifar10_datasets & co. replaced by a stand-in that only carries the abstract
batch and num_classes (all init and loss read); no example is ever loaded.
"""
import argparse
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
from learned_optimization.tasks.fixed import conv  # noqa: E402


def stand_in(num_classes, default_size, channels):
  """A replacement for image.<name>_datasets: the abstract batch and extra_info only."""

  def make(batch_size, image_size=default_size, **unused_kwargs):
    image_size = tuple(image_size)
    return types.SimpleNamespace(
        abstract_batch={
            "image": jax.ShapeDtypeStruct((batch_size,) + image_size + (channels,), jnp.float32),
            "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
        },
        extra_info={"num_classes": num_classes})

  return make


conv.image.cifar10_datasets = stand_in(10, (32, 32), 3)
conv.image.cifar100_datasets = stand_in(100, (32, 32), 3)
conv.image.imagenet32_datasets = stand_in(1000, (32, 32), 3)
conv.image.imagenet16_datasets = stand_in(1000, (16, 16), 3)
fashion_mnist = stand_in(10, (28, 28), 1)

REFERENCE_TASKS = [
    "Conv_Cifar10_8_16x32", "Conv_Cifar10_16_32x64x64", "Conv_Cifar10_32x64x64",
    "Conv_Cifar100_32x64x64", "Conv_Cifar100_32x64x64_BS32", "Conv_Cifar100_32x64x64_Tanh",
    "Conv_Cifar10_32x64x64_Tanh", "Conv_imagenet32_16_32x64x64",
    "Conv_imagenet16_16_64x128x128x128", "Conv_Cifar10_32x64x64_batchnorm",
    "Conv_Cifar10_32x64x64_layernorm",
]


def batch_norm(x):
  return conv.hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, is_training=True)


def layer_norm(x):
  return conv.hk.LayerNorm(create_scale=True, create_offset=True, axis=-1)(x)


def fmnist_task(hidden, image_size=(28, 28), act=jax.nn.relu, norm_fn=None):
  kwargs = {"norm_fn": norm_fn} if norm_fn else {}
  fn = conv._cross_entropy_pool_loss(hidden, act, num_classes=10, **kwargs)  # pylint: disable=protected-access
  return conv._ConvTask(fn, fashion_mnist(128, image_size))  # pylint: disable=protected-access


FMNIST_TASKS = {
    "Conv_FashionMnist_8_16x32": lambda: fmnist_task([16, 32], (8, 8)),
    "Conv_FashionMnist_16_32x64x64": lambda: fmnist_task([32, 64, 64], (16, 16)),
    "Conv_FashionMnist_32x64x64": lambda: fmnist_task([32, 64, 64]),
    "Conv_FashionMnist_32x64x64_Tanh": lambda: fmnist_task([32, 64, 64], act=jnp.tanh),
    "Conv_FashionMnist_32x64x64_batchnorm": lambda: fmnist_task([32, 64, 64], norm_fn=batch_norm),
    "Conv_FashionMnist_32x64x64_layernorm": lambda: fmnist_task([32, 64, 64], norm_fn=layer_norm),
}


def fixed_batch(abstract, num_classes):
  """2 images with a smooth deterministic pattern in [0, 1] (multiples of 1/16, exact and short in JSON), labels 1 and 7 mod C."""
  h, w, c = abstract["image"].shape[1:]
  i = np.arange(2 * h * w * c, dtype=np.float64).reshape(2, h, w, c)
  image = np.round(16 * (0.5 + 0.5 * np.sin(0.37 * i + 0.11 * np.arange(2).reshape(2, 1, 1, 1)))) / 16
  image = image.astype(np.float32)
  label = np.array([1 % num_classes, 7 % num_classes], np.int32)
  return {"image": jnp.asarray(image), "label": jnp.asarray(label)}


BATCHES = {}
HEAD = 32


def short(tree):
  """Trim the head of large arrays to HEAD values (their checksums still cover every value)."""
  for a in tree.values():
    if "head" in a:
      a["head"] = a["head"][:HEAD]
  return tree


def record(task):
  params, state = task.init_with_state(jax.random.PRNGKey(0))
  batch = fixed_batch(task.datasets.abstract_batch, task.datasets.extra_info["num_classes"])
  batch_key = "x".join(str(d) for d in batch["image"].shape[1:])
  golden_common.FULL_MAX = 1 << 30
  BATCHES[batch_key] = {"image": as_json(batch["image"]), "label": as_json(batch["label"])}
  golden_common.FULL_MAX = 256

  def loss_fn(p):
    return task.loss_with_state(p, state, jax.random.PRNGKey(1), batch)

  (loss, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
  return {
      "init": short(flat(params)),
      "init_state": short(flat(state)),
      "batch": batch_key,
      "loss": as_json(loss),
      "grad": short(flat(grad)),
      "state": short(flat(new_state)),
  }


out = {}
for name in REFERENCE_TASKS:
  out[name] = record(getattr(conv, name)())
for name, make in FMNIST_TASKS.items():
  out[name] = record(make())
out["batches"] = BATCHES
save(os.path.join(GOLDEN_DIR, args.mode), "conv.json", out, "tools/reference/golden_conv.py")
