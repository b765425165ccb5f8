"""make_transfer_pipeline: featurizers of several backbones, concatenated, then a head.

``make_head`` lives in :mod:`skmtl.heads`; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.pipeline import FeatureUnion, Pipeline

from skmtl.features.featurizer import PretrainedFeaturizer
from skmtl.heads.factory import make_head

__all__ = ["make_head", "make_transfer_pipeline"]


def make_transfer_pipeline(
    backbones: str | Sequence[str] = "efficientnet_lite0",
    *,
    head: Any = "multibranch",
    cache: Any = None,
    flip: bool = False,
    head_params: dict | None = None,
    on_error: str = "raise",
    **featurizer_params: Any,
) -> Pipeline:
    """Build ``Pipeline([("features", FeatureUnion(featurizers)), ("head", head)])``.

    The union outputs a pandas DataFrame whose columns are named ``<backbone>__<k>``, so a
    multi-branch head finds each backbone's columns by itself.

    Parameters
    ----------
    backbones : str or sequence of str
        Registry names, one featurizer each.
    head : {"multibranch", "logistic"} or estimator, default="multibranch"
        The classifier on the concatenated features.
    cache : None, path or joblib.Memory
        Per-image feature cache shared by all featurizers.
    flip : bool, default=False
        Featurise mirrored images.
    head_params : dict, optional
        Parameters of the head.
    on_error : {"raise", "warn"}, default="raise"
        What an unreadable image does. "raise" stops with an error naming it. "warn"
        passes ``on_error="warn"`` to the featurizers and wraps the head in
        :class:`skmtl.SkipUnreadable`: such images are left out of training and get the
        training class prior at predict time, each time with a warning naming them.
    **featurizer_params
        Further :class:`PretrainedFeaturizer` parameters, the same for every backbone.

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> pipe = make_transfer_pipeline(["efficientnet_lite0", "efficientnet_lite1"],
    ...                               head="logistic", cache="features/")
    >>> [name for name, _ in pipe.named_steps["features"].transformer_list]
    ['efficientnet_lite0', 'efficientnet_lite1']
    """
    names = [backbones] if isinstance(backbones, str) else list(backbones)
    if not names:
        raise ValueError("backbones is empty: give at least one backbone name.")
    if len(set(names)) != len(names):
        raise ValueError(f"backbones has duplicates: {names}.")
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error={on_error!r}: use 'raise' or 'warn'.")
    union = FeatureUnion(
        [(name, PretrainedFeaturizer(name, cache=cache, flip=flip, on_error=on_error,
                                     **featurizer_params))
         for name in names],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    head = make_head(head, **(head_params or {}))
    if on_error == "warn":
        from skmtl.ensemble.unreadable import SkipUnreadable

        head = head if isinstance(head, SkipUnreadable) else SkipUnreadable(head)
    return Pipeline([("features", union), ("head", head)])
