"""Keying a callable by what it computes (the cache key of a custom preprocess)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from skmtl.features._callable_key import UnkeyableCallableError, callable_key


def compile_function(source: str, name: str = "pre", **globals_):
    """A function as if defined in a module ``user_module`` (the same name each time)."""
    namespace = {"__name__": "user_module", "np": np, **globals_}
    exec(source, namespace)
    return namespace[name]


def test_lambdas_differ_by_body_and_match_by_body():
    assert callable_key(lambda x: x / 255.0) != callable_key(lambda x: x / 127.5 - 1)
    assert callable_key(lambda x: x / 255.0) == callable_key(lambda x: x / 255.0)
    assert len(callable_key(lambda x: x)) == 40


def test_edited_function_under_the_same_name():
    before = compile_function("def pre(x):\n    return x / 255.0\n")
    after = compile_function("def pre(x):\n    return x / 255.0 - 0.5\n")
    assert (before.__module__, before.__qualname__) == (after.__module__, after.__qualname__)
    assert callable_key(before) != callable_key(after)
    assert callable_key(before) == callable_key(compile_function(
        "def pre(x):\n    return x / 255.0\n"))


def test_nested_code_objects_count():
    assert (callable_key(lambda x: [v * 2 for v in x])
            != callable_key(lambda x: [v * 3 for v in x]))
    assert (callable_key(lambda x: (lambda y: y + 1)(x))
            != callable_key(lambda x: (lambda y: y + 2)(x)))


def test_defaults_and_keyword_defaults():
    def a(x, s=1.0, *, t=2):
        return x * s + t

    def b(x, s=1.0, *, t=3):
        return x * s + t

    def c(x, s=1, *, t=2):  # int, not float
        return x * s + t

    assert len({callable_key(a), callable_key(b), callable_key(c)}) == 3


def make_scaler(value):
    return lambda x: x * value


def test_closure_values_numbers_and_arrays():
    assert callable_key(make_scaler(2.0)) != callable_key(make_scaler(3.0))
    assert callable_key(make_scaler(2.0)) == callable_key(make_scaler(2.0))
    mean = np.array([1.0, 2.0, 3.0])
    assert callable_key(make_scaler(mean)) != callable_key(make_scaler(mean + 1e-9))
    assert callable_key(make_scaler(mean)) == callable_key(make_scaler(mean.copy()))
    assert (callable_key(make_scaler({"a": [1, (2, "x")]}))
            != callable_key(make_scaler({"a": [1, (2, "y")]})))


def test_globals_are_followed_recursively():
    source = "def helper(x):\n    return x * SCALE\n\ndef pre(x):\n    return helper(x) + 1\n"
    two, three = compile_function(source, SCALE=2), compile_function(source, SCALE=3)
    assert callable_key(two) != callable_key(three)
    edited = compile_function(source.replace("x * SCALE", "x * SCALE * 1"), SCALE=2)
    assert callable_key(two) != callable_key(edited)
    assert callable_key(two) == callable_key(compile_function(source, SCALE=2))


def test_a_recursive_function_is_keyed():
    fact = compile_function("def pre(n):\n    return 1 if n < 2 else n * pre(n - 1)\n")
    assert callable_key(fact) == callable_key(fact)


def test_partial_ufunc_builtin_and_library_function():
    keys = {
        callable_key(functools.partial(np.clip, a_min=0, a_max=1)),
        callable_key(functools.partial(np.clip, a_min=0, a_max=2)),
        callable_key(functools.partial(np.clip, 0.5)),
        callable_key(np.sqrt),
        callable_key(np.exp),
        callable_key(abs),
        callable_key(np.clip),
    }
    assert len(keys) == 7
    assert callable_key(np.sqrt) == callable_key(np.sqrt)


class Scale:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        return x * self.factor

    def method(self, x):
        return x - self.factor


class Shift(Scale):
    def __call__(self, x):
        return x + self.factor


def test_callable_instances_and_bound_methods():
    assert callable_key(Scale(2)) != callable_key(Scale(3))
    assert callable_key(Scale(2)) == callable_key(Scale(2))
    assert callable_key(Scale(2)) != callable_key(Shift(2))
    assert callable_key(Scale(2).method) != callable_key(Scale(3).method)
    assert callable_key(Scale(2).method) != callable_key(Scale(2))


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (make_scaler(np.random.default_rng(0)), r"variable 'value'.*Generator"),
        (make_scaler(object()), r"variable 'value'.*builtins\.object"),
        (make_scaler(np.array([object()])), r"object array"),
        (functools.partial(np.add, object()), r"preprocess\.args"),
    ],
)
def test_values_that_cannot_be_digested_are_refused(fn, match):
    with pytest.raises(UnkeyableCallableError, match=match):
        callable_key(fn)
    assert issubclass(UnkeyableCallableError, ValueError)


def test_unkeyable_global_is_named():
    pre = compile_function("def pre(x):\n    return x * STATE.value\n", STATE=object())
    with pytest.raises(UnkeyableCallableError, match=r"global 'STATE' used by pre"):
        callable_key(pre)
