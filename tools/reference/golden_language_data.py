"""Golden token ids of the byte-level language datasets (learned_optimization/tasks/datasets/language.py).

    $REF_DIR/venv/bin/python tools/reference/golden_language_data.py [--seqio PATH_TO_SEQIO_BARE_REPO]

writes test/golden/language_data.json (no random numbers are drawn: one file for both modes).

The harness venv has no seqio (and none of its tensorflow_text / sentencepiece dependencies), so
this script loads seqio's own `seqio/vocabularies.py` from a local clone of google/seqio (a bare
git repository, read with `git show`), with tensorflow_text and sentencepiece replaced by empty
modules (ByteVocabulary uses neither), and registers it as the `seqio` module that language.py
imports. Everything else is the reference's own code:
  encode      `ByteVocabulary().encode_tf(text)` for each text (seqio)
  crop        `language._crop_or_pad(ids, L + 1, pad_token=0)` for L in LENGTHS
  pipeline    the set of distinct `{obs, target}` rows that `language._load` (tfds.load and tfds.as_numpy
              stood in for by a tf.data.Dataset of the texts and its numpy iterator: repeat, tokenize, crop/pad, shuffle,
              create_lm_obs_target, batch) yields in 400 batches of 1; the order is an unseeded
              shuffle, so only the set is a fact
  vocab_size  `ByteVocabulary().vocab_size`
  splits      `_make_datasets`' split strings (with and without a test split)
"""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--seqio", default="/work/.mirror/google+seqio/repo")
args = parser.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common  # noqa: E402
from golden_common import GOLDEN_DIR, save  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


from seqio_standin import load_seqio  # noqa: E402

SEQIO_COMMIT = load_seqio(args.seqio)
from learned_optimization.tasks.datasets import language  # noqa: E402

TEXTS = [
    "Hello, world!",
    "",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "na\u00efve caf\u00e9 \u2014 \u65e5\u672c\u8a9e \U0001F600",
    "tab\there\nnewline",
]
LENGTHS = [4, 8, 16]

vocab = language.get_bytes_vocab()
encode = [[int(i) for i in vocab.encode_tf(tf.constant(t)).numpy()] for t in TEXTS]
crop = {str(L): [[int(i) for i in language._crop_or_pad(tf.constant(e, tf.int32), L + 1, 0).numpy()]  # pylint: disable=protected-access
                 for e in encode] for L in LENGTHS}

pipeline = {}
for L in LENGTHS:
  language.tfds.load = lambda name, split, shuffle_files: tf.data.Dataset.from_tensor_slices({"text": tf.constant(TEXTS)})
  language.tfds.as_numpy = lambda ds: ds.as_numpy_iterator()  # the harness's TFDS shim serves images only
  it = iter(language._load("stand_in", vocab, 1, L, "train"))  # pylint: disable=protected-access
  rows = set()
  for _ in range(400):
    b = next(it)
    assert b["obs"].shape == (1, L) and b["target"].shape == (1, L), b["obs"].shape
    assert b["obs"].dtype == np.int32, b["obs"].dtype
    rows.add((tuple(int(x) for x in b["obs"][0]), tuple(int(x) for x in b["target"][0])))
  pipeline[str(L)] = [{"obs": list(o), "target": list(t)} for o, t in sorted(rows)]

body = {
    "texts": TEXTS,
    "vocab_size": int(vocab.vocab_size),
    "encode": encode,
    "crop": crop,
    "pipeline": pipeline,
    "seqio_commit": SEQIO_COMMIT,
}
save(GOLDEN_DIR, "language_data.json", body, "tools/reference/golden_language_data.py")
print(json.dumps({"vocab_size": body["vocab_size"], "rows": {k: len(v) for k, v in pipeline.items()}}))
