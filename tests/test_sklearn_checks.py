"""scikit-learn's own estimator checks on every skmtl estimator, and what cannot apply.

Estimators that take 2D numeric tables (the heads and K-fold averaging) run the whole
``parametrize_with_checks`` suite; the few checks they are expected to fail are listed in
``EXPECTED_FAILED_CHECKS`` with the reason.

``PretrainedFeaturizer``, ``FlipTTAClassifier`` and ``FineTunedClassifier`` read images
(paths or H x W x C arrays) and declare ``input_tags.two_d_array = False``. Every
scikit-learn check that fits, predicts or transforms feeds a (n_samples, n_features)
table of numbers, which is not an image set, so scikit-learn skips them for such
estimators. For these three we run the checks that need no data (``DATA_FREE_CHECKS``)
and, in ``test_image_estimators_follow_the_fit_contract``, the contract those skipped
checks guard, on real image input: fit returns self and leaves parameters untouched,
nothing but ``*_`` attributes appear, an unfitted estimator raises ``NotFittedError``,
and a pickled fitted estimator gives identical output.
"""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)

from skmtl import (
    FineTunedClassifier,
    FlipTTAClassifier,
    KFoldEnsembleClassifier,
    LogisticHeadClassifier,
    MultiBranchClassifier,
    PretrainedFeaturizer,
)

#: A head small enough that the ~60 checks take well under a minute.
CHEAP_HEAD = {"epochs": 5, "patience": None, "units": 8, "batch_size": 64, "n_models": 1,
              "learning_rate": 0.05, "l2": 0.0}

EXPECTED_FAILED_CHECKS = {
    "MultiBranchClassifier": {
        "check_estimator_tags_renamed": (
            "scikeras 0.13's BaseWrapper defines _more_tags without __sklearn_tags__; "
            "MultiBranchClassifier defines __sklearn_tags__ (skmtl._utils.tags), and "
            "tests/test_heads.py checks the tags it reports."
        ),
        "check_mixin_order": (
            "scikeras' KerasClassifier inherits (BaseWrapper, ClassifierMixin), which puts "
            "ClassifierMixin after BaseEstimator; a subclass cannot reorder it without an "
            "MRO conflict. ClassifierTagsMixin comes first and sets the classifier tags."
        ),
        "check_sample_weight_equivalence_on_dense_data": (
            "mini-batch training: weighting a row's loss by 2 is not the same sequence of "
            "updates as repeating the row, as for scikit-learn's own SGD/MLP estimators."
        ),
        "check_methods_sample_order_invariance": (
            "Keras predicts in float32 and a CPU matrix product may round a row differently "
            "with its position in the batch (seen: 6e-8, 2e-7 relative, against the check's "
            "1e-7); tests/test_heads.py checks order invariance at float32 precision. "
            "Intermittent, so the xfail is not strict."
        ),
    },
}

DATA_FREE_CHECKS = [
    check_estimator_cloneable,
    check_estimator_tags_renamed,
    check_valid_tag_types,
    check_estimator_repr,
    check_no_attributes_set_in_init,
    check_do_not_raise_errors_in_init_or_set_params,
    check_mixin_order,
    check_parameters_default_constructible,
    check_get_params_invariance,
    check_set_params,
]

TINY = {"weights": None, "input_size": 32, "batch_size": 16}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(
    [MultiBranchClassifier(**CHEAP_HEAD), KFoldEnsembleClassifier(LogisticRegression(), cv=3),
     LogisticHeadClassifier()],
    expected_failed_checks=expected_failed_checks,
)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def image_estimators():
    featurizer = PretrainedFeaturizer("mobilenet_v3_small", **TINY)
    pipe = make_pipeline(PretrainedFeaturizer("mobilenet_v3_small", **TINY),
                         LogisticRegression(max_iter=500))
    # epochs=0: the head phase alone (a fit that trains fits is in tests/test_finetune.py)
    tuned = FineTunedClassifier("mobilenet_v3_small", epochs=0, verbose=0,
                                validation_fraction=None, **TINY)
    return [featurizer, FlipTTAClassifier(pipe), tuned]


@pytest.mark.parametrize("estimator", image_estimators(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_image_estimators_pass_the_data_free_checks(estimator, check):
    assert not estimator.__sklearn_tags__().input_tags.two_d_array
    check(type(estimator).__name__, estimator)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    y = np.repeat(["dark", "light"], 6)
    X = np.stack([np.clip(rng.normal(60 if c == "dark" else 190, 25, (32, 32, 3)), 0, 255)
                  for c in y]).astype(np.uint8)
    return X, y


@pytest.mark.parametrize("estimator", image_estimators(), ids=lambda e: type(e).__name__)
def test_image_estimators_follow_the_fit_contract(estimator, images):
    X, y = images
    output = "predict_proba" if hasattr(estimator, "predict_proba") else "transform"
    with pytest.raises(NotFittedError):
        getattr(estimator, output)(X)
    params = joblib.hash(estimator.get_params())
    public = {k for k in vars(estimator) if not k.startswith("_")}
    assert estimator.fit(X, y) is estimator
    assert joblib.hash(estimator.get_params()) == params
    added = {k for k in vars(estimator) if not k.startswith("_")} - public
    assert added and all(k.endswith("_") for k in added), added
    result = getattr(estimator, output)(X)
    assert result.shape[0] == len(X) and np.isfinite(result).all()
    np.testing.assert_allclose(getattr(pickle.loads(pickle.dumps(estimator)), output)(X),
                               result, rtol=1e-5, atol=1e-6)
