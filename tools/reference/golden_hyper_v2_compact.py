"""golden_common's array convention with a shorter head, for the HyperV2 / VeLO golden files
(golden_hyper_v2.py, golden_velo.py), whose θ and LSTM states would otherwise make them large."""
import numpy as np

from golden_common import flat


def compact(tree, full_max, head=32):
  """golden_common.flat, but arrays of more than full_max values keep only `head` leading values
  beside their checksums (the same convention with a shorter head; keeps this file small)."""
  out = flat(tree)
  for k, v in out.items():
    if "values" in v and len(np.asarray(v["values"]).reshape(-1)) > full_max:
      a = np.asarray(v.pop("values"), np.float64).reshape(-1)
      w = (np.arange(a.size) % 97) + 1
      v["head"] = np.asarray(a[:head], np.float32).tolist()
      v["checksum"] = {"sum": float(a.sum()), "abs_sum": float(np.abs(a).sum()), "weighted_sum": float((a * w).sum())}
    elif "head" in v:
      v["head"] = v["head"][:head]
  return out
