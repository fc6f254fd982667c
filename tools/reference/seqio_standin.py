"""seqio for the reference's language.py in the harness venv, which lacks seqio.

`load_seqio(repo)` loads seqio's own `seqio/vocabularies.py` from a local clone of google/seqio (a
bare git repository, read with `git show`), with tensorflow_text and sentencepiece replaced by
placeholder modules (ByteVocabulary uses neither), and registers it as the `seqio` module that
`learned_optimization/tasks/datasets/language.py` imports. Returns the seqio commit.
"""
import importlib.util
import subprocess
import sys
import types


def load_seqio(repo):
  src = subprocess.run(["git", "-C", repo, "show", "HEAD:seqio/vocabularies.py"], check=True,
                       capture_output=True, text=True).stdout
  commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
  class Absent(types.ModuleType):
    """Every attribute is a placeholder class (only type annotations and unused classes read them)."""

    def __getattr__(self, attr):
      return type(attr, (), {})

  for name in ("tensorflow_text", "sentencepiece", "sentencepiece.sentencepiece_model_pb2"):
    sys.modules.setdefault(name, Absent(name))
  sys.modules["sentencepiece"].sentencepiece_model_pb2 = sys.modules["sentencepiece.sentencepiece_model_pb2"]
  spec = importlib.util.spec_from_loader("seqio.vocabularies", loader=None)
  vocabularies = importlib.util.module_from_spec(spec)
  exec(compile(src, "seqio/vocabularies.py", "exec"), vocabularies.__dict__)  # pylint: disable=exec-used
  seqio = types.ModuleType("seqio")
  seqio.vocabularies = vocabularies
  seqio.SentencePieceVocabulary = vocabularies.SentencePieceVocabulary
  sys.modules["seqio"] = seqio
  sys.modules["seqio.vocabularies"] = vocabularies
  return commit
