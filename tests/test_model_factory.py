"""`mempkg.models.factory`: a reader's model from ``"package.module:function"``. Each bad factory is refused
with a FactoryError that names what to fix; a good one returns the score model it built, called with
``device=`` only when it takes that keyword."""

from __future__ import annotations

import itertools
import textwrap

import pytest
import torch

from mempkg.core.digests import content_digest
from mempkg.models.factory import (TEXT_CONDITIONAL, FactoryError, factory_function, is_text_conditional,
                                   load_factory_model)

NAMES = itertools.count()

FACTORIES = '''
import torch
from torch import nn

import mempkg


class Tiny(nn.Module):
    """A one-layer denoiser D(x, sigma) on 3 x 8 x 8 images."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x, sigma):
        return x / (1 + sigma[:, None, None, None] ** 2) + 0.1 * self.conv(x)


def edm(device="cpu"):
    return mempkg.EDMDenoiser(Tiny().to(device), sigma_data=0.5, data_shape=(3, 8, 8))


def edm_no_shape():
    return mempkg.EDMDenoiser(Tiny(), sigma_data=0.5)


CALLS = []


def edm_bare():
    CALLS.append("bare")
    return edm()


def edm_kwargs(**kw):
    CALLS.append(kw)
    return edm(kw["device"])


def not_a_model():
    return Tiny()


class Text:
    sde = mempkg.VPSDE()
    data_shape = (4, 2, 2)

    def score(self, x, t, cond=None):
        return -x

    def encode_images(self, x):
        return x

    def encode_prompts(self, prompts):
        return torch.zeros(len(prompts), 1, 4)


def text():
    return Text()


NOT_CALLABLE = 3
'''


@pytest.fixture
def factories(tmp_path, monkeypatch):
    """A module of factories on the Python path, under a fresh name; returns that name."""
    name = f"reader_factories_{next(NAMES)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORIES))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize("spec", ["my_models", "my_models:", ":edm", "my models:edm", "a:b:c", 3, None])
def test_a_spec_not_of_the_form_module_function_is_refused(spec):
    with pytest.raises(FactoryError, match="not of the form 'package.module:function'"):
        factory_function(spec)


def test_a_missing_module_is_refused_with_the_python_path_hint():
    with pytest.raises(FactoryError, match="cannot import 'no_such_module_here'.*PYTHONPATH"):
        load_factory_model("no_such_module_here:edm")


def test_a_missing_function_and_a_non_callable_are_refused(factories):
    with pytest.raises(FactoryError, match="has no 'edm_cifar'"):
        load_factory_model(f"{factories}:edm_cifar")
    with pytest.raises(FactoryError, match="NOT_CALLABLE is a int, not a function"):
        load_factory_model(f"{factories}:NOT_CALLABLE")


def test_a_factory_returning_no_score_model_is_refused(factories):
    """A bare network has neither ``sde`` nor ``score``: the check names both."""
    with pytest.raises(FactoryError, match=r"not a score model.*lacks \['sde', 'score'\]"):
        load_factory_model(f"{factories}:not_a_model")


def test_a_model_without_what_the_caller_needs_is_refused(factories):
    with pytest.raises(FactoryError, match=r"EDMDenoiser without data_shape = \(C, H, W\)"):
        load_factory_model(f"{factories}:edm_no_shape", needs=("data_shape",))
    with pytest.raises(FactoryError, match=r"without encode_images\(x\) -> latents.*encode_prompts"):
        load_factory_model(f"{factories}:edm", needs=TEXT_CONDITIONAL)


def test_device_is_passed_only_to_a_factory_that_takes_it(factories):
    """``edm(device=...)`` and ``edm_kwargs(**kw)`` get the device; ``edm_bare()`` is called bare."""
    import importlib
    module = importlib.import_module(factories)
    load_factory_model(f"{factories}:edm_bare", device="cpu")
    load_factory_model(f"{factories}:edm_kwargs", device="cpu")
    assert module.CALLS == ["bare", {"device": "cpu"}]
    model = load_factory_model(f"{factories}:edm", device="cpu")
    assert next(model.net.parameters()).device == torch.device("cpu")


def test_a_good_factory_returns_its_score_model_keyed_by_its_weights(factories):
    """The EDM denoiser comes back as built, scores finitely, and is identified by its weights: two calls give
    one digest, a change of one weight another (so a chapter's cache never serves another model's numbers)."""
    model = load_factory_model(f"{factories}:edm", needs=("data_shape",))
    assert type(model).__name__ == "EDMDenoiser" and model.data_shape == (3, 8, 8)
    assert not is_text_conditional(model)
    x = torch.randn(2, 3, 8, 8)
    assert torch.isfinite(model.score(x, 0.5)).all()
    again = load_factory_model(f"{factories}:edm")
    assert content_digest(again) == content_digest(model)
    with torch.no_grad():
        again.net.conv.bias[0] += 1e-3
    assert content_digest(again) != content_digest(model)


def test_a_text_conditional_model_is_recognised(factories):
    model = load_factory_model(f"{factories}:text", needs=TEXT_CONDITIONAL + ("data_shape",))
    assert is_text_conditional(model)


def test_the_image_side_is_read_from_the_model():
    from types import SimpleNamespace

    from mempkg.models.factory import image_side

    def enc(*a):
        return None
    assert image_side(SimpleNamespace(data_shape=(3, 32, 32))) == 32
    assert image_side(SimpleNamespace(data_shape=(3, 32, 32), image_size=64)) == 64
    latent = SimpleNamespace(data_shape=(4, 8, 8), vae_scale=8, encode_images=enc, encode_prompts=enc)
    assert image_side(latent) == 64
    assert image_side(SimpleNamespace(data_shape=(4, 8, 8), encode_images=enc, encode_prompts=enc)) is None
    assert image_side(SimpleNamespace()) is None
