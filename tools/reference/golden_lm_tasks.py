"""Golden values of the language-model tasks (learned_optimization/tasks/fixed/rnn_lm.py and
transformer_lm.py) for lopt-ts.

    $REF_DIR/venv/bin/python tools/reference/golden_lm_tasks.py --mode legacy
    $REF_DIR/venv/bin/python tools/reference/golden_lm_tasks.py --mode partitionable

writes test/golden/<mode>/lm_tasks.json. For each task it records:
  init         init(PRNGKey(0))'s params
  batch        the key into "batches" of its small fixed token batch (made here: 2 sequences of
               6 tokens with padding zeros inside and at the end; one per vocabulary size)
  loss, grad   loss(params, PRNGKey(1), batch) and its gradient w.r.t. params (the key feeds the
               dropout of the transformers with dropout_rate 0.1)

Arrays of more than 256 values are written as a 32-value head + checksums (as golden_conv.py).
The datasets are stood in for by an object carrying the abstract batch and vocab_size (all init
and loss read), so no text is loaded; language.py needs seqio, loaded by seqio_standin.py.
"""
import argparse
import functools
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
from golden_common import GOLDEN_DIR, as_json, flat, save  # noqa: E402
from seqio_standin import load_seqio  # noqa: E402

load_seqio(args.seqio)
import haiku as hk  # noqa: E402
from learned_optimization.tasks import rnn  # noqa: E402
from learned_optimization.tasks.fixed import rnn_lm  # noqa: E402
from learned_optimization.tasks.fixed import transformer_lm  # noqa: E402


def stand_in(vocab_size):
  """A replacement for language.<name>_datasets: the abstract batch and vocab_size only."""

  def make(batch_size, sequence_length):
    leaf = jax.ShapeDtypeStruct((batch_size, sequence_length), jnp.int32)
    return types.SimpleNamespace(abstract_batch={"obs": leaf, "target": leaf},
                                 extra_info={"vocab_size": vocab_size})

  return make


def fixed_batch(vocab_size):
  """2 rows of 7 tokens -> obs/target [2, 6]; row 0 has a padding 0 inside, row 1 ends in padding."""
  hi = vocab_size - 1
  rows = np.array([[5, 17, hi, 0, 42, 7, 99 % vocab_size],
                   [hi - 3, 11, 3, 250 % vocab_size, 0, 0, 0]], np.int32)
  return {"obs": jnp.asarray(rows[:, :-1]), "target": jnp.asarray(rows[:, 1:])}


BATCHES = {}
HEAD = 32


def short(tree):
  for a in tree.values():
    if "head" in a:
      a["head"] = a["head"][:HEAD]
  return tree


def record(task, vocab_size):
  params = task.init(jax.random.PRNGKey(0))
  batch = fixed_batch(vocab_size)
  golden_common.FULL_MAX = 1 << 30
  BATCHES[str(vocab_size)] = {"obs": as_json(batch["obs"]), "target": as_json(batch["target"])}
  golden_common.FULL_MAX = 256
  loss, grad = jax.value_and_grad(lambda p: task.loss(p, jax.random.PRNGKey(1), batch))(params)
  return {"init": short(flat(params)), "batch": str(vocab_size), "loss": as_json(loss), "grad": short(flat(grad))}


out = {}
bytes_ds = stand_in(259)(128, 32)
RNN_CORES = {"IRNN": rnn.IRNN, "LSTM": hk.LSTM, "GRU": hk.GRU, "VanillaRNN": hk.VanillaRNN}
for core_name, core in RNN_CORES.items():
  name = f"RNNLM_lm1bbytes_Patch32_{core_name}128_Embed64"
  assert hasattr(rnn_lm, name), name
  task = rnn_lm.TeacherForcedRNNLM(functools.partial(core, 128), embedding_dim=64, vocab_size=None, datasets=bytes_ds)
  out[name] = record(task, 259)

transformer_lm.language.lm1b_32k_datasets = stand_in(32100)
# one 32k-vocabulary task (its 32100-row embedding and output layer make each test run take seconds;
# the other transformer_lm.py tasks differ only in sizes)
for name in ["TransformerLM_LM1B_MultiRuntime_0"]:
  out[name] = record(getattr(transformer_lm, name)(), 32100)

# lopt-ts's offline addition: MultiRuntime_2's network over the byte vocabulary
transformer_lm.language.lm1b_32k_datasets = stand_in(259)
cfg = {"num_heads": 4, "d_model": 32, "num_layers": 2, "batch_size": 8, "sequence_length": 8, "dropout_rate": 0.0}
out["TransformerLM_Fortunes_Bytes_4h32d2l"] = record(transformer_lm._TransformerTask(cfg), 259)  # pylint: disable=protected-access

out["batches"] = BATCHES
save(os.path.join(GOLDEN_DIR, args.mode), "lm_tasks.json", out, "tools/reference/golden_lm_tasks.py")
