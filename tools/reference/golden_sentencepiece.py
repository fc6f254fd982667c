"""Golden sentencepiece token ids for lopt-ts's 32k tokenization (`tokenizeCorpus`, datasets/sentencepiece.ts).

    $REF_DIR/venv/bin/python tools/reference/golden_sentencepiece.py [--seqio PATH_TO_SEQIO_BARE_REPO]

The reference's 32k language datasets encode text with seqio's `SentencePieceVocabulary` (the T5
`cc_all.32000` model, 100 extra ids). That model is not reachable from here, so this script trains a
small sentencepiece model (unigram, 300 pieces, the T5 model's `nmt_nfkc` normalisation and id
layout: pad 0, eos 1, unk 2) on the first 200 kB of the Debian fortunes, with the sentencepiece
library seqio uses (pip `sentencepiece`), and writes it with the ids that seqio's own
`SentencePieceVocabulary(model, extra_ids=100).encode(text)` gives for a set of texts (seqio's
`vocabularies.py` from a local clone of google/seqio, as golden_language_data.py loads it, with the
real sentencepiece installed). Writes
  libs/tasks/src/__tests__/fixtures/sentencepiece-300.model
  test/golden/sentencepiece.json   {model, seqio_commit, vocab_size, texts: [{text, ids}]}
"""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--seqio", default="/work/.mirror/google+seqio/repo")
parser.add_argument("--corpus", default="/usr/share/games/fortunes/fortunes")
args = parser.parse_args()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import sentencepiece as spm  # noqa: E402  (imported first: seqio then uses the real library)
from sentencepiece import sentencepiece_model_pb2  # noqa: E402,F401
from seqio_standin import load_seqio  # noqa: E402

SEQIO_COMMIT = load_seqio(args.seqio)
import seqio  # noqa: E402

MODEL = os.path.join(ROOT, "libs/tasks/src/__tests__/fixtures/sentencepiece-300.model")
with open(args.corpus, "rb") as f:
  corpus = f.read(200_000).decode("utf-8", errors="ignore")
prefix = MODEL[: -len(".model")]
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(corpus.splitlines()), model_prefix=prefix, vocab_size=300,
    model_type="unigram", character_coverage=1.0, normalization_rule_name="nmt_nfkc",
    pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, minloglevel=2)
os.remove(prefix + ".vocab")

vocab = seqio.SentencePieceVocabulary(MODEL, extra_ids=100)
TEXTS = [
    "Hello world, this is a test.",
    "You will be successful in your work.",
    "  odd   spacing\tand tabs  ",
    "ünïcödé text ✓ 42 — ﬁne Ｆｕｌｌｗｉｄｔｈ",
    "",
    "A line\nwith an inner newline",
    "Q: Why did the chicken cross the road?\nA: To get to the other side.",
]
out = {
    "model": os.path.relpath(MODEL, ROOT),
    "seqio_commit": SEQIO_COMMIT,
    "vocab_size": vocab.vocab_size,
    "texts": [{"text": t, "ids": [int(i) for i in vocab.encode(t)]} for t in TEXTS],
}
with open(os.path.join(ROOT, "test/golden/sentencepiece.json"), "w") as f:
  json.dump(out, f, indent=1, ensure_ascii=False)
  f.write("\n")
print(json.dumps(out, ensure_ascii=False)[:600])
