"""Golden values of the parametric language-model families (tasks/parametric/lm_rnn.py and
lm_transformer.py) for lopt-ts.

    $REF_DIR/venv/bin/python tools/reference/golden_parametric_lm.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_parametric_lm.py --mode partitionable

writes test/golden/<mode>/parametric_lm.json:
  samplers     ParametricLMRNN.sample (6 keys), sample_lm_rnn and sample_lm_transformer (30 keys
               each; plain {obj, kwargs} trees, LogFeature as {"LogFeature": v})
  rnn          a ParametricLMRNN (LSTM, rnn 16, embed 8, vocab 100 folded from 259): for each of
               the 5 initializer indices (init_scale 1.3) init(PRNGKey(1)), loss and gradient
               (key PRNGKey(3)) on the fixed batch, the normalizer on a few values
  rnn_irnn     the same with rnn.IRNN as the core, initializer index 2
  transformer  a ParametricLMTransformer (2 heads, 2 layers, d_model 16, vocab 100 folded, dropout
               0.1): init(PRNGKey(1)), loss and gradient with key PRNGKey(3), normalizer
  batch        the fixed [2, 6] token batch (ids up to 258, padding 0 inside and at the end)
Arrays of more than 256 values are written as a 32-value head + checksums. The datasets are
stood in for by the abstract batch and vocab_size; language.py needs seqio (seqio_standin.py).
"""
import argparse
import os
import sys
import types

parser = argparse.ArgumentParser()
parser.add_argument("--mode", required=True, choices=["legacy", "partitionable"])
parser.add_argument("--seqio", default="/work/.mirror/google+seqio/repo")
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import setup_mode  # noqa: E402

jax = setup_mode(args.mode)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import golden_common  # noqa: E402
from golden_common import GOLDEN_DIR, as_json, cfg_plain, flat, restore_numpy_product, save  # noqa: E402
from seqio_standin import load_seqio  # noqa: E402

restore_numpy_product()
load_seqio(args.seqio)
import haiku as hk  # noqa: E402
from learned_optimization.tasks import rnn  # noqa: E402
from learned_optimization.tasks.parametric import cfgobject  # noqa: E402
from learned_optimization.tasks.parametric import lm_rnn  # noqa: E402
from learned_optimization.tasks.parametric import lm_transformer  # noqa: E402
from learned_optimization.tasks.parametric import parametric_utils as pu  # noqa: E402

golden_common.FULL_MAX = 256
K = jax.random.PRNGKey


def short(tree):
  for a in tree.values():
    if "head" in a:
      a["head"] = a["head"][:32]
  return tree


leaf = jax.ShapeDtypeStruct((4, 6), jnp.int32)
datasets = types.SimpleNamespace(abstract_batch={"obs": leaf, "target": leaf}, extra_info={"vocab_size": 259})
rows = np.array([[5, 17, 258, 0, 142, 7, 99], [255, 11, 3, 250, 101, 0, 0]], np.int32)
batch = {"obs": jnp.asarray(rows[:, :-1]), "target": jnp.asarray(rows[:, 1:])}
NORM_IN = jnp.array([-1.0, 0.5, 3.0, 100.0, jnp.nan])

rnn_family = lm_rnn.ParametricLMRNN(datasets, rnn_size=16, embed_size=8, rnn_core_fn=hk.LSTM, vocab_size=100)
samplers = {
    "ParametricLMRNN.sample": [{k: as_json(v) for k, v in rnn_family.sample(K(i)).values["initializer"].items()} for i in range(6)],
    "sample_lm_rnn": [cfg_plain(lm_rnn.sample_lm_rnn(K(i))) for i in range(30)],
    "sample_lm_transformer": [cfg_plain(lm_transformer.sample_lm_transformer(K(i))) for i in range(30)],
}


def task_params(index, init_scale=1.3):
  return cfgobject.CFGNamed("ParametricLMRNN", {
      "initializer": {"index": jnp.asarray(index, jnp.int32), "init_scale": jnp.asarray(init_scale, jnp.float32)}})


def record(task):
  params = task.init(K(1))
  loss, grad = jax.value_and_grad(task.loss)(params, K(3), batch)
  return {"init": short(flat(params)), "loss": as_json(loss), "grad": short(flat(grad)),
          "normalizer([-1, 0.5, 3, 100, nan])": as_json(task.normalizer(NORM_IN))}


out_rnn = {str(j): record(rnn_family.task_fn(task_params(j))) for j in range(len(pu.SampleInitializer.inits))}
irnn_family = lm_rnn.ParametricLMRNN(datasets, rnn_size=16, embed_size=8, rnn_core_fn=rnn.IRNN, vocab_size=100)
tf_family = lm_transformer.ParametricLMTransformer(datasets, vocab_size=100, num_heads=2, num_layers=2, d_model=16)
body = {
    "samplers": samplers,
    "rnn": out_rnn,
    "rnn_irnn": record(irnn_family.task_fn(task_params(2))),
    "transformer": record(tf_family.task_fn(tf_family.sample(K(0)))),
    "batch": {k: as_json(v) for k, v in batch.items()},
}
save(os.path.join(GOLDEN_DIR, args.mode), "parametric_lm.json", body, "tools/reference/golden_parametric_lm.py")
