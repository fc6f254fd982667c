"""Golden values of the MLP-Mixer and ViT tasks (learned_optimization/tasks/fixed/mlp_mixer.py,
tasks/fixed/vit.py) and of the parametric ViT family (tasks/parametric/vit.py) for lopt-ts.

    $REF_DIR/venv/bin/python tools/reference/golden_mlp_mixer_vit.py --mode legacy --vit-src DIR
    $REF_DIR/venv/bin/python tools/reference/golden_mlp_mixer_vit.py --mode partitionable --vit-src DIR

writes test/golden/<mode>/mlp_mixer_vit.json. The reference's models come from the
`vision_transformer` package (github.com/google-research/vision_transformer, commit c6de1e5, its
vit_jax/models_vit.py, models_mixer.py, models_resnet.py): DIR is a folder holding `vit_jax/` with
those files (e.g. `git archive HEAD vit_jax/__init__.py vit_jax/models_*.py | tar x`); models_mixer
also needs `pip install einops`. parametric/vit.py imports language.py, which needs seqio
(seqio_standin.py, `--seqio` a clone of google/seqio).

For each case it records:
  init            task.init(PRNGKey(0))'s params (flax variables: {"params": {...}})
  batch           key into "batches": 2 images made here (a smooth pattern in multiples of 1/16)
  loss, grad      task.loss(params, PRNGKey(1), batch) and its gradient, at init
  loss_p, grad_p  the same at perturbed params: every leaf x (flattened, row-major) + 0.05·sin(0.37·i),
                  since both heads are zero-initialised (every gradient but the head's is 0 at init)
Cases: the fixed reference tasks MLPMixer_Cifar100_tiny16, VIT_Cifar100_skinnydeep and
VIT_Cifar100_wideshallow (over 100k parameters: every leaf of more than 8 values as an 8-value head
and checksums, and at init only the head's gradient), small configurations of both
model classes (ViT with dropout, so the flax dropout keys are checked), and the parametric family:
sample_vit(PRNGKey(i)) for i < 20 and one sampled task (init PRNGKey(2), loss PRNGKey(3)).

Otherwise arrays of more than 256 values are written as a 32-value head and checksums
(golden_common's convention); the batches are written whole. Dataset constructors are replaced by
stand-ins that only carry the abstract batch and num_classes (all that init and loss read); no
example is ever loaded.
"""
import argparse
import os
import sys
import types

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
parser.add_argument("--vit-src", required=True, help="folder holding vision_transformer's vit_jax/")
parser.add_argument("--seqio", default="/work/.mirror/google+seqio/repo")
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.abspath(args.vit_src))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import golden_common  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, cfg_plain, flat, save  # noqa: E402
# the reference imports `vision_transformer.vit_jax`, models_vit imports `vit_jax`: one package, both names
import vit_jax  # noqa: E402
import vit_jax.models_mixer  # noqa: E402,F401
import vit_jax.models_vit  # noqa: E402,F401
sys.modules["vision_transformer"] = types.ModuleType("vision_transformer")
sys.modules["vision_transformer"].vit_jax = vit_jax
sys.modules["vision_transformer.vit_jax"] = vit_jax
from learned_optimization.tasks.fixed import mlp_mixer, vit  # noqa: E402
from seqio_standin import load_seqio  # noqa: E402
load_seqio(args.seqio)  # parametric/vit.py imports tasks/datasets/language.py, which needs seqio
from learned_optimization.tasks.parametric import vit as pvit  # noqa: E402

golden_common.FULL_MAX = 256
HEAD = 32


def stand_in(num_classes, default_size, channels):
  def make(batch_size, image_size=default_size, **unused):
    image_size = tuple(image_size)
    return types.SimpleNamespace(
        abstract_batch={
            "image": jax.ShapeDtypeStruct((batch_size,) + image_size + (channels,), jnp.float32),
            "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
        },
        extra_info={"num_classes": num_classes})
  return make


# 2-image batches: the abstract batch's size does not change the parameters.
for mod in (mlp_mixer, vit):
  mod.image.cifar100_datasets = lambda bs, **kw: stand_in(100, (32, 32), 3)(2)


def fixed_batch(h, w, c, num_classes):
  i = np.arange(2 * h * w * c, dtype=np.float64).reshape(2, h, w, c)
  image = np.round(16 * (0.5 + 0.5 * np.sin(0.37 * i + 0.11 * np.arange(2).reshape(2, 1, 1, 1)))) / 16
  label = np.array([1 % num_classes, 7 % num_classes], np.int32)
  return {"image": jnp.asarray(image.astype(np.float32)), "label": jnp.asarray(label)}


def perturb(params):
  def f(x):
    x = np.asarray(x)
    d = (0.05 * np.sin(0.37 * np.arange(x.size, dtype=np.float64))).astype(np.float32)
    return jnp.asarray((x.reshape(-1) + d).reshape(x.shape).astype(np.float32))
  return jax.tree_util.tree_map(f, params)


def short(tree, head=HEAD):
  for a in tree.values():
    if "head" in a:
      a["head"] = a["head"][:head]
  return tree


LARGE = 100000  # tasks with more parameters: every leaf of over 8 values as 8 values + checksums


BATCHES = {}


def record(task, init_key=0, loss_key=1):
  ab = task.datasets.abstract_batch["image"].shape
  nc = task.datasets.extra_info["num_classes"]
  bkey = f"{ab[1]}x{ab[2]}x{ab[3]}_c{nc}"
  if bkey not in BATCHES:
    BATCHES[bkey] = fixed_batch(ab[1], ab[2], ab[3], nc)
  batch = BATCHES[bkey]
  params = task.init(jax.random.PRNGKey(init_key))
  vg = jax.value_and_grad(task.loss)
  loss, grad = vg(params, jax.random.PRNGKey(loss_key), batch)
  pp = perturb(params)
  loss_p, grad_p = vg(pp, jax.random.PRNGKey(loss_key), batch)
  n = sum(x.size for x in jax.tree_util.tree_leaves(params))
  print(f"  {n} params, loss {float(loss):.6f}, perturbed {float(loss_p):.6f}", flush=True)
  large = n > LARGE
  golden_common.FULL_MAX = 8 if large else 256
  head = 8 if large else HEAD
  grad = flat(grad)
  if large:  # at init only the (zero-initialised) head has a gradient: keep the head's
    grad = {k: v for k, v in grad.items() if "['head']" in k}
  out = {"batch": bkey, "num_params": int(n), "init": short(flat(params), head),
         "loss": as_json(loss), "grad": short(grad, head),
         "loss_p": as_json(loss_p), "grad_p": short(flat(grad_p), head),
         "normalizer([-1, 0.5, 3, 100])": as_json(task.normalizer(jnp.array([-1, 0.5, 3, 100], jnp.float32)))}
  golden_common.FULL_MAX = 256
  return out


def mixer_cfg(patch, hidden, blocks, tokens, channels):
  c = ml_collections.ConfigDict()
  c.model_name = "lopt_ts_test_mixer"
  c.patches = ml_collections.ConfigDict({"size": (patch, patch)})
  c.hidden_dim, c.num_blocks, c.tokens_mlp_dim, c.channels_mlp_dim = hidden, blocks, tokens, channels
  return c


def vit_cfg(patch, hidden, mlp, heads, layers, dropout, attention_dropout):
  c = ml_collections.ConfigDict()
  c.model_name = "lopt_ts_test_vit"
  c.patches = ml_collections.ConfigDict({"size": (patch, patch)})
  c.hidden_size = hidden
  c.transformer = ml_collections.ConfigDict()
  c.transformer.mlp_dim, c.transformer.num_heads, c.transformer.num_layers = mlp, heads, layers
  c.transformer.attention_dropout_rate, c.transformer.dropout_rate = attention_dropout, dropout
  c.classifier = "token"
  c.representation_size = None
  return c


out = {}
CASES = {
    "MLPMixer_Cifar100_tiny16": lambda: mlp_mixer.MLPMixer_Cifar100_tiny16(),
    "VIT_Cifar100_skinnydeep": lambda: vit.VIT_Cifar100_skinnydeep(),
    "VIT_Cifar100_wideshallow": lambda: vit.VIT_Cifar100_wideshallow(),
    # small configurations of the two model classes (10x10 input: the mixer's SAME padding pads 1+1)
    "mixer_small": lambda: mlp_mixer.MLPMixerTask(mixer_cfg(4, 16, 2, 8, 24), stand_in(10, (10, 10), 1)(2)),
    "vit_small_dropout": lambda: vit.VisionTransformerTask(vit_cfg(4, 16, 24, 2, 2, 0.3, 0.2), stand_in(5, (8, 8), 3)(2)),
}
for name, make in CASES.items():
  print(name, flush=True)
  out[name] = record(make())

# ---- parametric: samplers, then one sampled task ----
pvit_samples = [pvit.sample_vit(jax.random.PRNGKey(i)) for i in range(20)]
out["samplers"] = {"sample_vit": [cfg_plain(c) for c in pvit_samples]}


def kw_plain(cfg):
  kw = {k: (v.value if hasattr(v, "value") else v) for k, v in cfg.kwargs.items() if k != "datasets"}
  ds = cfg.kwargs["datasets"]
  return kw, ds.obj, tuple(ds.kwargs["image_size"].value)


# the sampled task: the first key whose configuration is small and has dropout
NUM_CLASSES = {"mnist_datasets": 10, "fashion_mnist_datasets": 10, "cifar10_datasets": 10,
               "cifar100_datasets": 100, "imagenet16_datasets": 1000}
CHANNELS = {"mnist_datasets": 1, "fashion_mnist_datasets": 1, "cifar10_datasets": 3,
            "cifar100_datasets": 3, "imagenet16_datasets": 3}
for i, c in enumerate(pvit_samples):
  kw, ds_name, size = kw_plain(c)
  small = kw["layers"] * kw["hidden_size"] * (kw["hidden_size"] + kw["mlp_dim"]) < 60000
  if small and kw["dropout"] > 0 and size[0] >= kw["patch_size"]:
    break
else:
  raise SystemExit("no small sampled ViT with dropout among the first 20 keys")
print(f"sampled task: key {i}: {kw} on {ds_name} {size}", flush=True)
fam = pvit.ParametricVIT(stand_in(NUM_CLASSES[ds_name], size, CHANNELS[ds_name])(2), **kw)
tp = fam.sample(jax.random.PRNGKey(4))
rec = record(fam.task_fn(tp), init_key=2, loss_key=3)
rec["sample_key"] = i
rec["dataset"] = ds_name
out["ParametricVIT_sampled"] = rec

golden_common.FULL_MAX = 10**9  # the batches whole
out["batches"] = {k: {"image": as_json(v["image"]), "label": as_json(v["label"])} for k, v in BATCHES.items()}
save(os.path.join(GOLDEN_DIR, args.mode), "mlp_mixer_vit.json", out, "tools/reference/golden_mlp_mixer_vit.py")
