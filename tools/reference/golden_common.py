"""What every golden-value script in tools/reference shares: picking jax's random mode, writing
arrays and trees as JSON, and the small params tree the learned-optimizer update goldens use.

Import it first thing and call `setup_mode(mode)` before anything draws a random number:

    from golden_common import setup_mode
    jax = setup_mode(args.mode)          # jax_threefry_partitionable set, jax returned
    from golden_common import as_json, flat, save, UPDATE_PARAMS0, update_grads, run_updates

Array convention (test/golden/README.md): {"shape", "dtype", "values"}, float32 values held exactly
by a Python float, integers as ints; arrays of more than FULL_MAX values as "head" (first 256) and
"checksum" (float64 sums of x, |x| and x_i*((i mod 97)+1)). Trees are flattened with jax's keystr.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402

LEARNED_OPTIMIZATION_COMMIT = "32186aa46a96f26ba0625755f93c55659adcd523"
FULL_MAX = 10000  # larger arrays are written as a head and checksums, to keep the files small
GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "golden")


def setup_mode(mode):
  """`legacy` = jax_threefry_partitionable False (jax < 0.5), `partitionable` = True."""
  if mode not in ("legacy", "partitionable"):
    raise ValueError(f"mode must be legacy or partitionable, got {mode!r}")
  jax.config.update("jax_threefry_partitionable", mode == "partitionable")
  return jax


def meta(made_by):
  return {
      "made_by": made_by,
      "jax": jax.__version__,
      "jax_threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
      "learned_optimization": LEARNED_OPTIMIZATION_COMMIT,
      "x64": bool(jax.config.jax_enable_x64),
  }


def as_json(x):
  a = np.asarray(x)
  if a.dtype.kind == "f":
    values = a.astype(np.float32)
  elif a.dtype.kind in "iub":
    values = a.astype(np.int64)
  else:
    raise TypeError(f"cannot write dtype {a.dtype}")
  out = {"shape": list(a.shape), "dtype": str(a.dtype)}
  if values.size <= FULL_MAX:
    out["values"] = values.tolist()
  else:
    v = values.reshape(-1).astype(np.float64)
    weights = (np.arange(v.size) % 97) + 1
    out["head"] = values.reshape(-1)[:256].tolist()
    out["checksum"] = {"sum": float(v.sum()), "abs_sum": float(np.abs(v).sum()),
                       "weighted_sum": float((v * weights).sum())}
  return out


def flat(tree):
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): as_json(leaf) for path, leaf in leaves}


def save(out_dir, name, body, made_by):
  """Write body (+ "_meta") to out_dir/name as compact JSON."""
  os.makedirs(out_dir, exist_ok=True)
  body = dict(body)
  body["_meta"] = meta(made_by)
  path = os.path.join(out_dir, name)
  with open(path, "w") as f:
    json.dump(body, f, separators=(",", ":"))
  print("wrote", os.path.relpath(path), flush=True)


def key_data(k):
  return np.asarray(jax.random.key_data(k)) if jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) else np.asarray(k)


# A matrix, a vector and a scalar leaf (MLPLOpt reshapes scalars; Adafac factors matrices).
UPDATE_PARAMS0 = {"m": np.array([[0.5, -1.0, 0.2], [1.5, 0.25, -0.3]], np.float32),
                  "v": np.array([0.3, -0.6, 0.9, 0.0], np.float32),
                  "s": np.array(1.25, np.float32)}


def update_grads(n=3):
  """The gradients of update i = 0..n-1 (n <= 3)."""
  return [
      {"m": np.array([[0.1, -0.2, 0.05], [0.3, 0.05, -0.1]], np.float32) * (1 + i),
       "v": np.array([0.01, -0.02, 0.5, -0.5], np.float32) * (i - 1.5),
       "s": np.array([0.7, -0.3, 0.1][i], np.float32)}
      for i in range(n)
  ]


def run_updates(opt, num_steps=100, loss=0.5):
  """init on UPDATE_PARAMS0, then one update per update_grads(): the flat state after each."""
  state = opt.init(UPDATE_PARAMS0, num_steps=num_steps)
  after = []
  for g in update_grads():
    state = opt.update(state, g, loss=np.float32(loss))
    after.append(flat(state))
  return after


def restore_numpy_product():
  """parametric_utils.uniform_scale_init calls numpy.product, an alias of numpy.prod that numpy 2
  removed; lax.switch traces every initializer, so without it no parametric task initialises."""
  if not hasattr(np, "product"):
    np.product = np.prod


def cfg_plain(cfg):
  """A cfgobject tree (tasks/parametric/cfgobject.py) as JSON values: CFGObject as {obj, kwargs},
  LogFeature(v) as {"LogFeature": v}, arrays as lists."""
  from learned_optimization.tasks.parametric import cfgobject  # pylint: disable=g-import-not-at-top
  if isinstance(cfg, cfgobject.CFGObject):
    return {"obj": cfg.obj, "kwargs": {k: cfg_plain(v) for k, v in cfg.kwargs.items()}}
  if isinstance(cfg, cfgobject.LogFeature):
    return {"LogFeature": cfg_plain(cfg.value)}
  if isinstance(cfg, (list, tuple)):
    return [cfg_plain(v) for v in cfg]
  return np.asarray(cfg).tolist()


def limit_between(times):
  """A time limit that splits the predicted times: halfway (in log) across the widest gap between
  neighbours in the middle half of the sorted predictions (so that a timed sampler rejects some
  draws and accepts others)."""
  import numpy as np
  srt = sorted(times)
  gaps = [(np.log(srt[j + 1]) - np.log(srt[j]), j) for j in range(len(srt) // 4, 3 * len(srt) // 4)]
  _, j = max(gaps)
  return float(np.exp((np.log(srt[j]) + np.log(srt[j + 1])) / 2))


def install_tfp_stub(normal, kl_divergence):
  """Puts a stand-in for tensorflow_probability (absent from the harness venv) in sys.modules:
  `tensorflow_probability.substrates.jax.distributions` with only `Normal` and `kl_divergence`,
  the two names the reference's image_mlp_vae.py takes from it."""
  import sys
  import types
  tfp = types.ModuleType("tensorflow_probability.substrates.jax")
  tfp.distributions = types.SimpleNamespace(Normal=normal, kl_divergence=kl_divergence)
  subs = types.ModuleType("tensorflow_probability.substrates")
  subs.jax = tfp
  root = types.ModuleType("tensorflow_probability")
  root.substrates = subs
  sys.modules.update({"tensorflow_probability": root, "tensorflow_probability.substrates": subs,
                      "tensorflow_probability.substrates.jax": tfp})
