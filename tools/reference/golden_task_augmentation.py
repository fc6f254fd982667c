"""Golden values for the task augmentations of tasks/task_augmentation.py (ReparamWeights,
ReparamWeightsFamily at its three levels), made with the REAL learned_optimization
(../shared/reference-harness).

    $REF_DIR/venv/bin/python tools/reference/golden_task_augmentation.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_task_augmentation.py --mode partitionable

Writes test/golden/<mode>/task_augmentation.json: for each level (global, tensor, parameter) of
ReparamWeightsFamily over a small ParametricImageMLP family (Fashion-MNIST 4x4, hidden (8,), the
datasets from the harness's TFDS stand-in, only their shapes used), and for PRNGKey(0..2): the
family's name, the sampled inner configuration and the parameter scale the task ends up with, the
task's init(PRNGKey(5)), and loss and gradient on a fixed batch (in the file).
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
from golden_common import GOLDEN_DIR, as_json, flat, restore_numpy_product, save  # noqa: E402
from learned_optimization.tasks import task_augmentation  # noqa: E402
from learned_optimization.tasks.datasets import image  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_mlp as pimage_mlp  # noqa: E402

restore_numpy_product()

K = jax.random.PRNGKey
inner = pimage_mlp.ParametricImageMLP(image.fashion_mnist_datasets(batch_size=4, image_size=(4, 4)), 10, (8,))
rs = np.random.RandomState(7)
batch = {"image": rs.uniform(size=(4, 4, 4, 1)).astype(np.float32), "label": np.array([1, 7, 2, 0], np.int32)}

out = {"batch": {k: as_json(v) for k, v in batch.items()}}
for level in ["global", "tensor", "parameter"]:
  fam = task_augmentation.ReparamWeightsFamily(inner, level, param_scale_range=(0.01, 100.))
  cases = []
  for i in range(3):
    cfg = fam.sample(K(i))
    task = fam.task_fn(cfg)
    scale = task._param_scale
    if isinstance(scale, cfgobject.LogFeature):
      scale = scale.value
    params = task.init(K(5))
    loss, grad = jax.value_and_grad(task.loss)(params, K(6), batch)
    sub = cfg.values["sub_cfg"].values
    cases.append({
        "sub_cfg": {"activation": as_json(sub["activation"]["index"]),
                    "init_index": as_json(sub["initializer"]["index"]),
                    "init_scale": as_json(sub["initializer"]["init_scale"])},
        # a scalar (global) or a tree like the params (tensor, parameter)
        "param_scale": flat(scale) if isinstance(scale, dict) else as_json(scale),
        "init": flat(params), "loss": as_json(loss), "grad": flat(grad),
    })
  out[level] = {"name": fam.name, "cases": cases}

save(os.path.join(GOLDEN_DIR, args.mode), "task_augmentation.json", out, "tools/reference/golden_task_augmentation.py")
