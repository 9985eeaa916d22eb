"""Pretrained networks from outside this project: musicnn's weights (`weights`), read by `tf_bundle`.

Numpy only (plus google-crc32c): no TensorFlow, no protobuf, no network beyond the package registry.
"""
