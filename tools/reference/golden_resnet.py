"""Golden values of the ResNet tasks (learned_optimization/tasks/fixed/resnet.py) and of the parametric
ResNet family (tasks/parametric/image_resnet.py) for lopt-ts, made with the REAL learned_optimization
(../shared/reference-harness).

    $REF_DIR/venv/bin/python tools/reference/golden_resnet.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_resnet.py --mode partitionable

writes test/golden/<mode>/resnet.json:
  shapes      for every Resnet_MultiRuntime_<i>: the shapes of init_with_state's params and state
              (jax.eval_shape: nothing is drawn, so even the big configurations are cheap)
  tasks       for the small ones (Resnet_MultiRuntime_0 and _1, and lopt-ts's Fashion-MNIST twins: the
              reference's own _ResnetTask with a 16x16x1, 10-class dataset in place of imagenet16):
              init_with_state(PRNGKey(0)) (params and batch-norm state), then loss, gradient and the new
              state of loss_with_state(params, state, PRNGKey(1), batch) on a fixed 4-image batch;
              "perturbed": loss and gradient at the init params with the logits w set to 0.1 sin(0.7 i)
              (the zero-initialised logits zero every other gradient at init); its new state is the
              same as at init (the logits do not touch batch norm; checked here), so it is not repeated;
              "perturbed_batch64": the same point on a 64-image batch (the tasks' batch size, where
              batch norm is well conditioned), with the reference's own float32-vs-float64 spread
  family      ParametricImageResNet over a stand-in dataset whose train split yields the fixed batch
              (its init_with_state reads one train batch): family.sample(PRNGKey(i)) for i < 6, and for
              two architectures x a few activations init_with_state(PRNGKey(2)), loss, grad, new state
              and the normalizer, and the perturbed point on a 64-image batch as for the tasks
  samplers    sample_image_resnet(PRNGKey(i)) for i < 30, as {obj, kwargs}
Arrays of more than 64 values are head (32 values) + checksums (golden_common's convention). The batches
are made here (fixed arrays), not read from any dataset; the datasets of the tasks are stand-ins carrying
the abstract batch and num_classes only.
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
from golden_common import GOLDEN_DIR, as_json, cfg_plain, flat, restore_numpy_product, save  # noqa: E402
from learned_optimization.tasks.fixed import resnet as fixed_resnet  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_resnet as presnet  # noqa: E402

restore_numpy_product()
K = jax.random.PRNGKey
golden_common.FULL_MAX = 64
HEAD = 32


def stand_in(num_classes, default_size, channels, train_batch=None):
  """A replacement for image.<name>_datasets: abstract batch, extra_info and (optionally) a train split."""

  def make(batch_size, image_size=default_size, **unused_kwargs):
    image_size = tuple(image_size)
    return types.SimpleNamespace(
        abstract_batch={
            "image": jax.ShapeDtypeStruct((batch_size,) + image_size + (channels,), jnp.float32),
            "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
        },
        extra_info={"num_classes": num_classes},
        train=itertools.repeat(train_batch) if train_batch is not None else None)

  return make


def fixed_batch(n, h, w, c, num_classes, phase=0.0):
  """n images of a smooth deterministic pattern in [0, 1] (multiples of 1/16); labels (3k + 1) mod C."""
  i = np.arange(n * h * w * c, dtype=np.float64).reshape(n, h, w, c)
  image = np.round(16 * (0.5 + 0.5 * np.sin(0.37 * i + phase + 0.11 * np.arange(n).reshape(n, 1, 1, 1)))) / 16
  label = (3 * np.arange(n) + 1) % num_classes
  return {"image": image.astype(np.float32), "label": label.astype(np.int32)}


def short(tree):
  for a in tree.values():
    if "head" in a:
      a["head"] = a["head"][:HEAD]
  return tree


def full(x):
  old = golden_common.FULL_MAX
  golden_common.FULL_MAX = 1 << 30
  try:
    return as_json(x)
  finally:
    golden_common.FULL_MAX = old


def shapes(tree):
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(p): list(l.shape) for p, l in leaves}


def with_logits(params):
  """params with the logits layer's w (zeros at init, which zeroes every other gradient) set to
  0.1 sin(0.7 i) over its flat index i: the "perturbed" point, where every layer gets a gradient."""
  w = params["res_net/~/logits"]["w"]
  new_w = (0.1 * np.sin(0.7 * np.arange(w.size))).astype(np.float32).reshape(w.shape)
  out = {k: dict(v) for k, v in params.items()}
  out["res_net/~/logits"]["w"] = jnp.asarray(new_w)
  return out


def loss_grad_state(task, params, state, batch):
  def loss_fn(p):
    return task.loss_with_state(p, state, K(1), batch)

  (loss, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
  return loss, grad, new_state


fixed_resnet.image.imagenet16_datasets = stand_in(1000, (16, 16), 3)
fixed_resnet.image.imagenet32_datasets = stand_in(1000, (32, 32), 3)
fixed_resnet.image.imagenet64_datasets = stand_in(1000, (64, 64), 3)

out = {"shapes": {}, "tasks": {}, "batches": {}}
for i in range(11):
  name = f"Resnet_MultiRuntime_{i}"
  task = getattr(fixed_resnet, name)()
  p, s = jax.eval_shape(task.init_with_state, K(0))
  out["shapes"][name] = {"params": shapes(p), "state": shapes(s), "batch_size": task.datasets.abstract_batch["image"].shape[0]}


def float64_loss_grad(task, params, state, batch):
  """The same loss and gradient computed by the reference in float64 (jax_enable_x64 for the call):
  how far float32 rounding alone moves the reference's own float32 values at this point."""
  jax.config.update("jax_enable_x64", True)
  try:
    def f64(tree):
      return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)) if np.asarray(a).dtype.kind == "f" else jnp.asarray(a), tree)
    loss, grad, _ = loss_grad_state(task, f64(params), f64(state), f64(batch))
    return np.asarray(loss), [np.asarray(g) for g in jax.tree_util.tree_leaves(grad)]
  finally:
    jax.config.update("jax_enable_x64", False)


def record(task, batch_key, batch, batch64_key, batch64):
  params, state = task.init_with_state(K(0))
  loss, grad, new_state = loss_grad_state(task, params, state, batch)
  ploss, pgrad, pstate = loss_grad_state(task, with_logits(params), state, batch)
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(pstate), jax.tree_util.tree_leaves(new_state)))
  # The 4-image batch makes batch norm ill-conditioned (1x1 maps from block group 2 on: statistics of
  # 4 numbers), so float32 rounding moves the perturbed gradient by ~1e-3 in the reference itself.
  # At the tasks' own batch size of 64 it does not: the same point on a 64-image batch, with the
  # reference's float32-vs-float64 spread recorded beside it.
  qloss, qgrad, _ = loss_grad_state(task, with_logits(params), state, batch64)
  loss64, grad64 = float64_loss_grad(task, with_logits(params), state, batch64)
  spread = max(float(np.max(np.abs(np.asarray(a, np.float64) - b))) for a, b in zip(jax.tree_util.tree_leaves(qgrad), grad64))
  return {"init": short(flat(params)), "init_state": short(flat(state)), "batch": batch_key,
          "loss": as_json(loss), "grad": short(flat(grad)), "state": short(flat(new_state)),
          "perturbed": {"loss": as_json(ploss), "grad": short(flat(pgrad))},
          "perturbed_batch64": {"batch": batch64_key, "loss": as_json(qloss), "grad": short(flat(qgrad)),
                                "reference_float64": {"loss_abs_diff": float(abs(float(qloss) - float(loss64))), "grad_max_abs_diff": spread}}}


def sixteenths(batch):
  """A batch of multiples of 1/16 written compactly: the images as integers k (image = k / 16)."""
  return {"image_sixteenths": full(np.round(batch["image"] * 16).astype(np.int32)), "label": full(batch["label"])}


b_rgb = fixed_batch(4, 16, 16, 3, 1000)
b_gray = fixed_batch(4, 16, 16, 1, 10)
b64_rgb = fixed_batch(64, 16, 16, 3, 1000)
b64_gray = fixed_batch(64, 16, 16, 1, 10)
out["batches"]["16x16x3"] = {k: full(v) for k, v in b_rgb.items()}
out["batches"]["16x16x1"] = {k: full(v) for k, v in b_gray.items()}
out["batches"]["64x16x16x3"] = sixteenths(b64_rgb)
out["batches"]["64x16x16x1"] = sixteenths(b64_gray)
for i in (0, 1):
  out["tasks"][f"Resnet_MultiRuntime_{i}"] = record(getattr(fixed_resnet, f"Resnet_MultiRuntime_{i}")(), "16x16x3", b_rgb, "64x16x16x3", b64_rgb)
# lopt-ts's Fashion-MNIST twins: the same configurations with a 16x16x1, 10-class dataset.
fixed_resnet.image.imagenet16_datasets = stand_in(10, (16, 16), 1)
for i in (0, 1):
  out["tasks"][f"Resnet_FashionMnist_MultiRuntime_{i}"] = record(getattr(fixed_resnet, f"Resnet_MultiRuntime_{i}")(), "16x16x1", b_gray, "64x16x16x1", b64_gray)

# ---- the parametric family ----
fb = fixed_batch(3, 12, 12, 1, 10, phase=0.3)
out["batches"]["family_12x12x1"] = {k: full(v) for k, v in fb.items()}
fds = stand_in(10, (12, 12), 1, train_batch={k: jnp.asarray(v) for k, v in fb.items()})(3)
fb64 = fixed_batch(64, 12, 12, 1, 10, phase=0.3)
out["batches"]["family_64x12x12x1"] = sixteenths(fb64)
ARCHS = {
    "a": dict(initial_conv_channels=4, initial_conv_stride=1, initial_conv_kernel_size=3,
              blocks_per_group=(1, 2, 1, 1), channels_per_group=(8, 8, 16, 16), max_pool=True),
    "b": dict(initial_conv_channels=6, initial_conv_stride=2, initial_conv_kernel_size=5,
              blocks_per_group=(1, 1, 1, 1), channels_per_group=(4, 8, 8, 8), max_pool=False),
}
family_out = {"archs": {k: {kk: (list(vv) if isinstance(vv, tuple) else vv) for kk, vv in v.items()} for k, v in ARCHS.items()},
              "samples": [], "cases": []}
fam_a = presnet.ParametricImageResNet(fds, **ARCHS["a"])
for i in range(6):
  family_out["samples"].append(int(fam_a.sample(K(i)).values["activation"]["index"]))
for arch, acts in (("a", [0, 4, 10]), ("b", [6, 11])):
  fam = presnet.ParametricImageResNet(fds, **ARCHS[arch])
  for act in acts:
    task = fam.task_fn(cfgobject.CFGNamed("ParametricImageResNet", {"activation": {"index": jnp.asarray(act, jnp.int32)}}))
    params, state = task.init_with_state(K(2))
    jb = {k: jnp.asarray(v) for k, v in fb.items()}
    loss, grad, new_state = loss_grad_state(task, params, state, jb)
    ploss, pgrad, pstate = loss_grad_state(task, with_logits(params), state, jb)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(pstate), jax.tree_util.tree_leaves(new_state)))
    jb64 = {k: jnp.asarray(v) for k, v in fb64.items()}
    qloss, qgrad, _ = loss_grad_state(task, with_logits(params), state, jb64)
    loss64, grad64 = float64_loss_grad(task, with_logits(params), state, jb64)
    spread = max(float(np.max(np.abs(np.asarray(a, np.float64) - b))) for a, b in zip(jax.tree_util.tree_leaves(qgrad), grad64))
    family_out["cases"].append({
        "perturbed_batch64": {"batch": "family_64x12x12x1", "loss": as_json(qloss), "grad": short(flat(qgrad)),
                              "reference_float64": {"loss_abs_diff": float(abs(float(qloss) - float(loss64))), "grad_max_abs_diff": spread}},
        "arch": arch, "activation": act, "init": short(flat(params)), "init_state": short(flat(state)),
        "loss": as_json(loss), "grad": short(flat(grad)), "state": short(flat(new_state)),
        "perturbed": {"loss": as_json(ploss), "grad": short(flat(pgrad))},
        "normalizer([-1, 0.5, 3, 100, nan])": as_json(task.normalizer(jnp.array([-1.0, 0.5, 3.0, 100.0, jnp.nan])))})
out["family"] = family_out
out["samplers"] = {"sample_image_resnet": [cfg_plain(presnet.sample_image_resnet(K(i))) for i in range(30)]}
save(os.path.join(GOLDEN_DIR, args.mode), "resnet.json", out, "tools/reference/golden_resnet.py")
