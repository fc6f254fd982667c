"""A tiny downsampled-ImageNet shard written by TensorFlow itself, as a fixture for lopt-ts's reader
(libs/tasks/src/datasets/imagenet.ts): the format of learned_optimization's
tasks/datasets/beam/make_resized_image_beam.py (GZIP TFRecord of tf.train.Example with bytes features
`image`: 8x8x3 uint8, `label`: one int32), 3 examples with image bytes (7 k + 3 i) mod 256 (k the
example, i the byte) and labels 5, 999, 0.

    $REF_DIR/venv/bin/python tools/reference/make_imagenet_tfrecord_fixture.py

writes libs/tasks/src/__tests__/fixtures/imagenet2012_8_tf.tfrecords.gz.
"""
import os

import numpy as np
import tensorflow as tf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "libs", "tasks", "src", "__tests__", "fixtures",
                   "imagenet2012_8_tf.tfrecords.gz")
with tf.io.TFRecordWriter(OUT, options="GZIP") as w:
  for k, label in enumerate([5, 999, 0]):
    image = ((7 * k + 3 * np.arange(8 * 8 * 3)) % 256).astype(np.uint8)
    feats = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
             "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[np.int32(label).tobytes()]))}
    w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
print("wrote", OUT)
