"""Two tiny npz files in the layout of image-net.org's downsampled ImageNet (`Imagenet8_train_npz`,
`Imagenet8_val_npz`: arrays `data` uint8 [n, 3*8*8] channel-planar, `labels` 1-based int, `mean`),
written by numpy itself, as fixtures for lopt-ts's converter (libs/tasks/src/datasets/imagenet_npz.ts):
numpy writes its zip entries with ZIP64 local headers, which a hand-made zip does not exercise.

`imagenet8_npz_stored.npz` (np.savez, 5 examples) and `imagenet8_npz_deflated.npz`
(np.savez_compressed, 3 examples). Example k of file f has channel c, row y, column x equal to
(31 f + 17 k + 50 c + 8 y + x) mod 256 and label (7 k + 300 f) mod 1000 + 1.

    $REF_DIR/venv/bin/python tools/reference/make_imagenet_npz_fixture.py
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "libs", "tasks", "src", "__tests__", "fixtures")


def arrays(f, n):
  k, c, y, x = np.meshgrid(np.arange(n), np.arange(3), np.arange(8), np.arange(8), indexing="ij")
  data = ((31 * f + 17 * k + 50 * c + 8 * y + x) % 256).astype(np.uint8).reshape(n, 3 * 8 * 8)
  labels = [int((7 * i + 300 * f) % 1000 + 1) for i in range(n)]  # a Python list, as the originals' pickles held
  return data, labels


d, l = arrays(0, 5)
np.savez(os.path.join(OUT, "imagenet8_npz_stored.npz"), data=d, labels=l, mean=d.mean(0))
d, l = arrays(1, 3)
np.savez_compressed(os.path.join(OUT, "imagenet8_npz_deflated.npz"), data=d, labels=l)
print("wrote", OUT)
