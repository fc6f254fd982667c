"""Golden values of `timed_sample_image_mlp_vae` (tasks/parametric/image_mlp_vae.py) for lopt-ts,
made with the REAL learned_optimization, run unmodified.

image_mlp_vae.py imports tasks/generative_model_utils.py, which imports tensorflow_probability at
module level (its LogStddevNormal and HKQuantizedNormal subclass tfp's Normal when the module
loads). The reference venv has no tensorflow_probability. Sampling never builds a distribution,
so a STUB module is put in sys.modules for the import: `tensorflow_probability.substrates.jax`
with a `distributions.Normal` class that refuses to be constructed and a `kl_divergence` that
refuses to be called. Nothing here calls either (the script would stop if it did): the sampler,
the featurisation and the timing model are the reference's own code.

As tools/reference/golden_timed_sample_vit.py, this script writes timing models of its own with
the reference's `checkpoints.save_state` into a temporary $LOPT_TIMING_MODEL_DIR, at the path
`time_filter/model_paths.py` names for ("sample_image_mlp_vae", "time"): `hk.transform_with_state`'s
init of `timing_model_forward` with PRNGKey(TIME_SEED), the normalizer state replaced by
min = uniform(PRNGKey(STATE_SEED), [4096, 8], -2, 1), max = min + uniform(PRNGKey(STATE_SEED + 1),
[4096, 8], 0.5, 3) (the same seeds as the ViT script, so lopt-ts rebuilds the same weights).
The reference's timed_sample_image_mlp_vae loads no valid model.

    $REF_DIR/venv/bin/python tools/reference/golden_timed_sample_image_mlp_vae.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_timed_sample_image_mlp_vae.py --mode partitionable

writes test/golden/<mode>/timed_sample_image_mlp_vae.json:
  seeds        TIME_SEED, STATE_SEED
  features     for sample_image_mlp_vae(PRNGKey(i)), i < 16: featurize_many([cfg], feature_type="time")
               (key ids [N, 8], float features [N, 8], int features [N]) and the time model's prediction
  max_time     the time limit used below (between two of those predictions)
  timed        timed_sample_image_mlp_vae(PRNGKey(i), max_time) for i < 8, as {obj, kwargs} trees
  none_found   a max_time below every prediction: the error the reference raises
"""
import argparse
import os
import sys
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)
import jax.numpy as jnp  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, cfg_plain, install_tfp_stub, limit_between, restore_numpy_product, save  # noqa: E402

restore_numpy_product()


class _UnusedNormal:
  """Stands in for tfp.distributions.Normal as a base class; sampling never constructs one."""

  def __init__(self, *a, **k):
    raise RuntimeError("the tensorflow_probability stub was used: this script must not build a distribution")


def _unused_kl(*a, **k):
  raise RuntimeError("the tensorflow_probability stub was used: this script must not compute a KL")


install_tfp_stub(_UnusedNormal, _unused_kl)

import haiku as hk  # noqa: E402
from learned_optimization import checkpoints  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_mlp_vae as pvae  # noqa: E402
from learned_optimization.time_filter import model_paths  # noqa: E402
from learned_optimization.time_filter import time_model  # noqa: E402

TIME_SEED, STATE_SEED = 1, 100
K = jax.random.PRNGKey

root = tempfile.mkdtemp(prefix="lopt-timing-models-")
os.environ["LOPT_TIMING_MODEL_DIR"] = root
dummy = (jnp.zeros([1, 1, 8], jnp.int32), jnp.zeros([1, 1, 8], jnp.float32), jnp.zeros([1, 1], jnp.int32))
init, apply = hk.transform_with_state(time_model.timing_model_forward)
weights, _ = init(K(TIME_SEED), dummy)
state_min = jax.random.uniform(K(STATE_SEED), [4096, 8], jnp.float32, -2, 1)
state = {"~": {"min": state_min, "max": state_min + jax.random.uniform(K(STATE_SEED + 1), [4096, 8], jnp.float32, 0.5, 3)}}
path = os.path.join(root, model_paths.models[("sample_image_mlp_vae", "time")])
os.makedirs(os.path.dirname(path), exist_ok=True)
checkpoints.save_state(path, (weights, state))

out = {"seeds": {"time": TIME_SEED, "state": STATE_SEED}, "model_path": model_paths.models[("sample_image_mlp_vae", "time")], "features": []}
times = []
for i in range(16):
  cfg = pvae.sample_image_mlp_vae(K(i))
  keys, floats, ints, _ = cfgobject.featurize_many([cfg], feature_type="time")
  pred, _ = apply(weights, state, K(0), (keys, floats, ints))
  t = float(pred[0])
  times.append(t)
  out["features"].append({"sample": cfg_plain(cfg), "key_feats": as_json(keys[0]), "float_feats": as_json(floats[0]),
                          "int_feats": as_json(ints[0]), "time": t})
srt = sorted(times)
max_time = limit_between(times)
out["max_time"] = max_time
print("times", srt, "max_time", max_time)
out["timed"] = [cfg_plain(pvae.timed_sample_image_mlp_vae(K(i), max_time=max_time)) for i in range(8)]
low = srt[0] / 1e6
try:
  pvae.timed_sample_image_mlp_vae(K(0), max_time=low)
  out["none_found"] = None
except ValueError as e:
  # the first line: gin appends a line naming the function's address, which differs per run
  out["none_found"] = {"max_time": low, "error": str(e).split("\n")[0]}
save(os.path.join(GOLDEN_DIR, args.mode), "timed_sample_image_mlp_vae.json", out,
     "tools/reference/golden_timed_sample_image_mlp_vae.py (tensorflow_probability stubbed in sys.modules; unused while sampling)")
