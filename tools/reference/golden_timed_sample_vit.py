"""Golden values of `timed_sample_vit` (tasks/parametric/vit.py) and the timing model it rejects
with (time_filter/time_model.py, cfgobject.featurize_many) for lopt-ts.

The reference loads trained timing models from gs://gresearch/learned_optimization/task_timing_models/
(or $LOPT_TIMING_MODEL_DIR), which this machine cannot reach. Instead this script writes timing
models of its own with the reference's `checkpoints.save_state` into a temporary
$LOPT_TIMING_MODEL_DIR, at the paths `time_filter/model_paths.py` names for sample_vit, and then
runs the reference's unmodified `timed_sample_vit` (parametric/vit.py imports language.py, which
needs seqio: seqio_standin.py, `--seqio` a clone of google/seqio). The models: `hk.transform_with_state`'s init of
`timing_model_forward` (file "time") and `valid_model_forward` (file "valid") with keys
PRNGKey(TIME_SEED) / PRNGKey(VALID_SEED), the normalizer state replaced by
min = uniform(PRNGKey(STATE_SEED), [4096, 8], -2, 1) and max = min + uniform(PRNGKey(STATE_SEED + 1), [4096, 8], 0.5, 3)
(a trained model's state holds the feature ranges it saw; the init's NaNs would flatten every
float feature). lopt-ts builds the same weights from the same keys (haiku-exact init) in its test.

    $REF_DIR/venv/bin/python tools/reference/golden_timed_sample_vit.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_timed_sample_vit.py --mode partitionable

writes test/golden/<mode>/timed_sample_vit.json:
  seeds        TIME_SEED, VALID_SEED, STATE_SEED
  features     for sample_vit(PRNGKey(i)), i < 12: featurize_many([cfg], feature_type="time")
               (key ids [N, 8], float features [N, 8], int features [N]) and the time model's
               prediction for it
  max_time     the time limit used below (between two of those predictions)
  timed        timed_sample_vit(PRNGKey(i), max_time) for i < 6, as {obj, kwargs} trees
  none_found   a max_time below every prediction: the error the reference raises
  other_samplers  featurize_many of sample_image_mlp / _image_conv / _image_mlp_ae / _image_resnet /
               _lm_rnn / _lm_transformer(PRNGKey(i)), i < 8 (image_mlp_vae is left out: it needs
               tensorflow_probability), the featurisation their timed samplers would reject by
"""
import argparse
import os
import sys
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
parser.add_argument("--seqio", default="/work/.mirror/google+seqio/repo")
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)
import jax.numpy as jnp  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, cfg_plain, limit_between, restore_numpy_product, save  # noqa: E402

from seqio_standin import load_seqio  # noqa: E402

restore_numpy_product()
# parametric/vit.py imports tasks/fixed/vit.py, which imports vision_transformer's models at the top;
# nothing here builds a ViT, so empty modules stand in for them
import types  # noqa: E402
for name in ["vision_transformer", "vision_transformer.vit_jax", "vision_transformer.vit_jax.models_vit", "vision_transformer.vit_jax.configs", "vision_transformer.vit_jax.configs.models"]:
  sys.modules[name] = types.ModuleType(name)
sys.modules["vision_transformer"].vit_jax = sys.modules["vision_transformer.vit_jax"]
sys.modules["vision_transformer.vit_jax"].models_vit = sys.modules["vision_transformer.vit_jax.models_vit"]
load_seqio(args.seqio)  # parametric/vit.py imports tasks/datasets/language.py, which needs seqio
import haiku as hk  # noqa: E402
from learned_optimization import checkpoints  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import vit  # noqa: E402
from learned_optimization.time_filter import model_paths  # noqa: E402
from learned_optimization.time_filter import time_model  # noqa: E402

TIME_SEED, VALID_SEED, STATE_SEED = 1, 2, 100
K = jax.random.PRNGKey

root = tempfile.mkdtemp(prefix="lopt-timing-models-")
os.environ["LOPT_TIMING_MODEL_DIR"] = root
dummy = (jnp.zeros([1, 1, 8], jnp.int32), jnp.zeros([1, 1, 8], jnp.float32), jnp.zeros([1, 1], jnp.int32))
state_min = jax.random.uniform(K(STATE_SEED), [4096, 8], jnp.float32, -2, 1)
state_max = state_min + jax.random.uniform(K(STATE_SEED + 1), [4096, 8], jnp.float32, 0.5, 3)

applies = {}
for kind, fwd, seed in [("time", time_model.timing_model_forward, TIME_SEED), ("valid", time_model.valid_model_forward, VALID_SEED)]:
  init, apply = hk.transform_with_state(fwd)
  weights, state = init(K(seed), dummy)
  state = {"~": {"min": state_min, "max": state_max}}
  path = os.path.join(root, model_paths.models[("sample_vit", kind)])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  checkpoints.save_state(path, (weights, state))
  applies[kind] = (apply, weights, state)
  if kind == "time":
    print("time model params:", {m: {n: v.shape for n, v in p.items()} for m, p in weights.items()})


def predict(cfg):
  apply, weights, state = applies["time"]
  keys, floats, ints, _ = cfgobject.featurize_many([cfg], feature_type="time")
  out, _ = apply(weights, state, K(0), (keys, floats, ints))
  return keys[0], floats[0], ints[0], float(out[0])


out = {"seeds": {"time": TIME_SEED, "valid": VALID_SEED, "state": STATE_SEED}, "features": []}
times = []
for i in range(12):
  cfg = vit.sample_vit(K(i))
  keys, floats, ints, t = predict(cfg)
  times.append(t)
  out["features"].append({"sample": cfg_plain(cfg), "key_feats": as_json(keys), "float_feats": as_json(floats),
                          "int_feats": as_json(ints), "time": t})
srt = sorted(times)
max_time = limit_between(times)
out["max_time"] = max_time
print("times", srt, "max_time", max_time)
out["timed"] = [cfg_plain(vit.timed_sample_vit(K(i), max_time=max_time)) for i in range(6)]
# the featurisation of the other samplers' configurations (their timed_sample_* use the same
# rejection loop and featurize_many): sampler(PRNGKey(i)) for i < 8
import importlib  # noqa: E402
for name in ["image_mlp", "image_conv", "image_mlp_ae", "image_mlp_vae", "image_resnet", "lm_rnn", "lm_transformer"]:
  try:
    mod = importlib.import_module(f"learned_optimization.tasks.parametric.{name}")
  except ImportError as e:  # image_mlp_vae needs tensorflow_probability, which the venv lacks
    print("skipping", name, e)
    continue
  rows = []
  for i in range(8):
    cfg = getattr(mod, f"sample_{name}")(K(i))
    keys, floats, ints, _ = cfgobject.featurize_many([cfg], feature_type="time")
    rows.append({"sample": cfg_plain(cfg), "key_feats": as_json(keys[0]), "float_feats": as_json(floats[0]), "int_feats": as_json(ints[0])})
  out.setdefault("other_samplers", {})[f"sample_{name}"] = rows
low = srt[0] / 1e6
try:
  vit.timed_sample_vit(K(0), max_time=low)
  out["none_found"] = None
except ValueError as e:
  out["none_found"] = {"max_time": low, "error": str(e)}
save(os.path.join(GOLDEN_DIR, args.mode), "timed_sample_vit.json", out, "tools/reference/golden_timed_sample_vit.py")
