"""Backbone features: images in, one row of features per image out, through the cache.

- :mod:`~skmtl.features.featurizer`: :class:`PretrainedFeaturizer`, the transformer.
- :mod:`~skmtl.features.sources`: what X may be (paths, a table with a path column, image
  arrays) and how one image's content key is computed.
- :mod:`~skmtl.features.streaming`: the batched loop, decoding ahead in threads.
- :mod:`~skmtl.features.store`: the content-keyed, settings-keyed per-image feature cache,
  rows stored in checksummed shards (:mod:`~skmtl.features._shards`), file keys remembered
  by stat (:mod:`~skmtl.features._file_keys`).
"""

from skmtl.features.featurizer import PretrainedFeaturizer
from skmtl.features.store import FeatureCache

__all__ = ["FeatureCache", "PretrainedFeaturizer"]
