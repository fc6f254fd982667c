"""Golden values for the parametric MLP variational autoencoder family
(tasks/parametric/image_mlp_vae.py), made with the REAL learned_optimization
(tensorflow_probability's Normal and its KL stood in for, with tfp's formulas: see below).

    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_mlp_vae.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_parametric_image_mlp_vae.py --mode partitionable

Writes test/golden/<mode>/parametric_image_mlp_vae.json: ParametricImageMLPVAE.sample and
sample_image_mlp_vae (as {obj, kwargs}) for PRNGKey(0..n); and, over Fashion-MNIST 4x4 with encoder
(5,), decoder (6,) and n_z 3 (plus a family with no hidden layers), for every combination of the two
switches (center_data, per_dim_loss) with a few activations and initializers: init(PRNGKey(2)), loss and
gradient on a fixed batch (in the file) with key PRNGKey(3), and the normalizer on a few values.
"""
import argparse
import itertools
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
from golden_common import GOLDEN_DIR, as_json, cfg_plain, flat, install_tfp_stub, restore_numpy_product, save  # noqa: E402

# The reference venv has no tensorflow_probability (and no registry here serves it), so the two
# tfp pieces generative_model_utils uses are stood in for by a small module with tfp's own formulas
# (tensorflow_probability/python/distributions/normal.py: Normal._sample_n = samplers.normal(shape,
# seed) * scale + loc with samplers.normal = jax.random.normal(seed, ...); Normal._log_prob =
# -0.5 * (x/scale - loc/scale)**2 - (0.5*log(2*pi) + log(scale)); _kl_normal_normal). Everything
# else (haiku, the MLPs, the keys, the task code) is the real learned_optimization.


class _Normal:

  def __init__(self, loc, scale, validate_args=False, name="Normal"):
    del validate_args, name
    self.loc, self.scale = loc, scale

  def sample(self, seed):
    return jax.random.normal(seed, self.loc.shape, self.loc.dtype) * self.scale + self.loc

  def _log_prob(self, x):
    scale = self.scale
    log_unnormalized = -0.5 * jax.numpy.square(x / scale - self.loc / scale)
    log_normalization = jax.numpy.asarray(0.5 * np.log(2. * np.pi), x.dtype) + jax.numpy.log(scale)
    return log_unnormalized - log_normalization

  def log_prob(self, x, name=None):
    del name
    return self._log_prob(x)


def _kl_divergence(a, b):
  b_scale = b.scale
  diff_log_scale = jax.numpy.log(a.scale) - jax.numpy.log(b_scale)
  return (0.5 * jax.numpy.square(a.loc / b_scale - b.loc / b_scale) + 0.5 * jax.numpy.expm1(2. * diff_log_scale) -
          diff_log_scale)


install_tfp_stub(_Normal, _kl_divergence)

from learned_optimization.tasks.datasets import image  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import image_mlp_vae as pvae  # noqa: E402

restore_numpy_product()

K = jax.random.PRNGKey
data = image.fashion_mnist_datasets(batch_size=4, image_size=(4, 4))
families = {"enc (5,), dec (6,), n_z 3": pvae.ParametricImageMLPVAE(data, (5,), (6,), 3),
            "enc (), dec (), n_z 2": pvae.ParametricImageMLPVAE(data, (), (), 2)}


def sample_plain(cfg):
  v = cfg.values
  return {"activation": int(v["activation"]["index"]), "init_index": int(v["initializer"]["index"]),
          "init_scale": as_json(v["initializer"]["init_scale"]), "center_data": bool(v["center_data"]),
          "per_dim_loss": bool(v["per_dim_loss"])}


fam0 = families["enc (5,), dec (6,), n_z 3"]
samplers = {"ParametricImageMLPVAE.sample": [sample_plain(fam0.sample(K(i))) for i in range(12)],
            "sample_image_mlp_vae": [cfg_plain(pvae.sample_image_mlp_vae(K(i))) for i in range(30)]}

rs = np.random.RandomState(5)
batch = {"image": rs.uniform(size=(3, 4, 4, 1)).astype(np.float32), "label": np.array([1, 2, 3], np.int32)}
cases = []
combos = list(itertools.product(families.keys(), itertools.product([False, True], repeat=2)))
for (fname, (center, per_dim)), act, init_index in zip(combos, itertools.cycle([0, 4, 10, 7]), itertools.cycle([2, 0, 1])):
  cfg = cfgobject.CFGNamed("ParametricImageMLPVAE", {
      "initializer": {"index": jnp.asarray(init_index, jnp.int32), "init_scale": jnp.asarray(0.7, jnp.float32)},
      "activation": {"index": jnp.asarray(act, jnp.int32)},
      "center_data": jnp.asarray(center), "per_dim_loss": jnp.asarray(per_dim)})
  task = families[fname].task_fn(cfg)
  params = task.init(K(2))
  loss, grad = jax.value_and_grad(task.loss)(params, K(3), batch)
  cases.append({"family": fname, "activation": act, "init_index": init_index, "center_data": center,
                "per_dim_loss": per_dim, "init": flat(params), "loss": as_json(loss), "grad": flat(grad),
                "normalizer([-30, 0.5, 20, 300])": as_json(task.normalizer(jnp.array([-30.0, 0.5, 20.0, 300.0])))})

save(os.path.join(GOLDEN_DIR, args.mode), "parametric_image_mlp_vae.json",
     {"samplers": samplers, "batch": {k: as_json(v) for k, v in batch.items()}, "cases": cases},
     "tools/reference/golden_parametric_image_mlp_vae.py")
