import json
import math

import pytest
import torch

from mempkg.book.cache import Cache, check_finite_summary, param_key
from mempkg.core.files import write_json_atomic


def test_second_call_reuses_and_new_params_recompute(tmp_path):
    cache, calls = Cache(tmp_path), []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3.0), "n": len(calls)}

    a = cache.get("thing", {"lr": 1e-3}, compute)
    b = cache.get("thing", {"lr": 1e-3}, compute)
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert torch.equal(a["x"], b["x"]) and b["n"] == 1
    cache.get("thing", {"lr": 2e-3}, compute)
    assert len(calls) == 2
    # a fresh Cache object on the same folder (a re-run of the notebook) also hits
    fresh = Cache(tmp_path)
    fresh.get("thing", {"lr": 1e-3}, compute)
    assert len(calls) == 2 and fresh.hits == 1


def test_record_holds_provenance(tmp_path):
    cache = Cache(tmp_path, device="cpu")
    cache.get("m", {"a": 1}, lambda: torch.zeros(2))
    _, record = cache.paths("m", {"a": 1})
    rec = json.loads(record.read_text())
    assert rec["params"] == {"a": 1} and rec["torch_version"] == torch.__version__
    assert rec["mempkg_version"] and rec["device"] == "cpu" and len(rec["sha256"]) == 64


def test_killed_write_leaves_nothing_trusted(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    real_save = torch.save

    def dying_save(obj, f):          # writes half a file, then the process "dies"
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        cache.get("m", {"a": 1}, lambda: torch.ones(3))
    monkeypatch.setattr(torch, "save", real_save)
    assert list(tmp_path.iterdir()) == []          # no temporary or final file left behind
    calls = []
    cache.get("m", {"a": 1}, lambda: calls.append(1) or torch.ones(3))
    assert calls == [1]


def test_data_without_record_or_with_wrong_hash_is_recomputed(tmp_path):
    cache, calls = Cache(tmp_path), []
    compute = lambda: calls.append(1) or torch.ones(3)       # noqa: E731
    cache.get("m", {}, compute)
    data, record = cache.paths("m", {})
    record.unlink()                                           # killed between data and record
    cache.get("m", {}, compute)
    assert len(calls) == 2
    data.write_bytes(b"garbage")                              # corrupted data file
    assert torch.equal(cache.get("m", {}, compute), torch.ones(3)) and len(calls) == 3


def test_model_roundtrip_is_a_state_dict(tmp_path):
    cache = Cache(tmp_path)
    build = lambda: torch.nn.Linear(2, 2)                     # noqa: E731
    fits = []

    def fit(net):
        fits.append(1)
        with torch.no_grad():
            net.weight.fill_(3.0)
        return {"losses": [1.0, 0.5]}

    net, hist = cache.model("lin", {"k": 1}, build, fit)
    net2, hist2 = cache.model("lin", {"k": 1}, build, fit)
    assert len(fits) == 1 and hist2 == {"losses": [1.0, 0.5]}
    assert torch.equal(net2.weight, torch.full((2, 2), 3.0))
    stored = torch.load(cache.paths("lin", cache.model_params({"k": 1}, build))[0], weights_only=True)
    assert set(stored["state_dict"]) == {"weight", "bias"}


def test_a_cached_network_is_keyed_by_its_architecture_not_its_name(tmp_path):
    # the same name and params, but the build changed what lies outside the state dict (a dropout rate):
    # the old weights must not be served
    cache, fits = Cache(tmp_path), []

    def build(p):
        return lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(p))

    def fit(net):
        fits.append(1)
        return {"losses": [0.0]}

    cache.model("net", {"preset": "a"}, build(0.1), fit)
    cache.model("net", {"preset": "a"}, build(0.1), fit)
    assert len(fits) == 1
    cache.model("net", {"preset": "a"}, build(0.2), fit)
    assert len(fits) == 2, "an edited preset trains again"
    with pytest.raises(ValueError, match="architecture"):
        cache.model_params(cache.model_params({"preset": "a"}, build(0.1)), build(0.2))


def test_architecture_digest_sees_what_the_weights_do_not():
    from mempkg.core.digests import architecture_digest, module_digest
    from mempkg.models.networks import unet_eps

    a, b = unet_eps((1, 8, 8), "digits", seed=0), unet_eps((1, 8, 8), "digits", seed=1)
    assert architecture_digest(a) == architecture_digest(b), "initial weights are not architecture"
    assert module_digest(a) != module_digest(b)
    # flags that only diffusers' config holds (the time embedding's sin/cos order), and a norm's eps
    for change in (dict(flip_sin_to_cos=True), dict(norm_eps=1e-5)):
        c = unet_eps((1, 8, 8), "digits", seed=0, **change)
        c.load_state_dict(a.state_dict())                      # the very same weights
        assert architecture_digest(c) != architecture_digest(a), change
        assert module_digest(c) != module_digest(a), change
    assert architecture_digest(unet_eps((1, 8, 8), "digits_narrow", seed=0)) != architecture_digest(a)


def test_keys_and_names():
    assert param_key("a", {"x": 1, "y": 2}) == param_key("a", {"y": 2, "x": 1})
    assert param_key("a", {"x": 1}) != param_key("a", {"x": 2}) != param_key("b", {"x": 2})
    with pytest.raises(ValueError, match="slashes"):
        Cache("/tmp").paths("a/b", {})


def test_summary_must_be_finite(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        check_finite_summary({"x": float("nan")})
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "s.json", {"x": float("inf")})
    assert not (tmp_path / "s.json").exists()


def test_train_cached_trains_once_and_keys_on_data_and_settings(tmp_path):
    from mempkg.core.schedules import VPSDE
    from mempkg.models.networks import MLPEps
    from mempkg.models.train import train_cached

    cache, sde = Cache(tmp_path), VPSDE()
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    build = lambda: MLPEps(2, hidden=8, depth=1, seed=0)          # noqa: E731
    kw = dict(seed=0, progress=False, lr=1e-3)
    net1, h1 = train_cached(cache, "m", build, {"hidden": 8}, sde, data, 5, **kw)
    net2, h2 = train_cached(cache, "m", build, {"hidden": 8}, sde, data, 5, **kw)
    assert (cache.misses, cache.hits) == (1, 1) and h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(net1.parameters(), net2.parameters()))
    train_cached(cache, "m", build, {"hidden": 8}, sde, data + 1, 5, **kw)       # other data: retrain
    train_cached(cache, "m", build, {"hidden": 8}, sde, data, 6, **kw)           # other steps: retrain
    assert cache.misses == 3
    assert not list(tmp_path.glob("*.checkpoint.pt"))                           # checkpoints cleaned up


def test_numpy_values_come_back_as_the_same_tensors_on_every_run(tmp_path):
    import numpy as np

    compute = lambda: {"W": np.linspace(0, 1, 5), "n": np.int64(3), "pair": (np.zeros(2), 1.5)}  # noqa: E731
    first = Cache(tmp_path).get("r", {}, compute)
    again = Cache(tmp_path)
    second = again.get("r", {}, compute)
    assert again.hits == 1
    assert torch.equal(first["W"], second["W"]) and isinstance(second["W"], torch.Tensor)
    assert second["n"] == 3 and torch.equal(second["pair"][0], torch.zeros(2, dtype=torch.float64))


def test_a_file_that_cannot_be_loaded_safely_is_recomputed(tmp_path):
    import numpy as np

    cache = Cache(tmp_path)
    cache.get("r", {}, lambda: torch.ones(2))
    data, record = cache.paths("r", {})
    torch.save({"x": np.ones(2)}, data)                  # a pickle weights_only refuses
    rec = json.loads(record.read_text())
    from mempkg.core.files import file_digest
    rec["sha256"] = file_digest(data)
    record.write_text(json.dumps(rec))
    assert torch.equal(cache.get("r", {}, lambda: torch.zeros(2)), torch.zeros(2))


def test_parameters_with_infinity_are_cached(tmp_path):
    # a gap band up to sigma = inf is a legitimate parameter; the JSON record must still be written
    cache = Cache(tmp_path)
    params = {"gap": [[0.85, math.inf]]}
    assert cache.get("band", params, lambda: torch.ones(2)).sum() == 2
    assert cache.get("band", params, lambda: torch.zeros(2)).sum() == 2 and cache.hits == 1
    assert cache.paths("band", params)[0] != cache.paths("band", {"gap": [[0.85, 1e9]]})[0]


# -- keys that know their inputs -----------------------------------------------------------------------

def _model(seed: int, beta_max: float = 20.0):
    from mempkg import VPSDE, EpsModel
    from mempkg.models.networks import MLPEps
    torch.manual_seed(seed)
    return EpsModel(MLPEps(2, hidden=8, depth=1, t_dim=4), VPSDE(beta_max=beta_max))


def test_a_cached_result_is_served_only_to_the_same_weights_and_data(tmp_path):
    cache, calls = Cache(tmp_path), []

    def compute():
        calls.append(1)
        return torch.tensor(float(len(calls)))

    a, x = _model(0), torch.randn(4, 2)
    cache.get("score", {"k": 1}, compute, inputs={"model": a, "x": x})
    cache.get("score", {"k": 1}, compute, inputs={"model": _model(0), "x": x.clone()})   # same content
    assert len(calls) == 1, "equal weights and equal images are the same inputs, whatever the object"
    cache.get("score", {"k": 1}, compute, inputs={"model": _model(1), "x": x})           # other weights
    cache.get("score", {"k": 1}, compute, inputs={"model": a, "x": x + 1})               # other images
    cache.get("score", {"k": 1}, compute, inputs={"model": _model(0, beta_max=10.0), "x": x})   # other schedule
    assert len(calls) == 4
    with torch.no_grad():
        next(a.parameters()).add_(0.5)                                                     # trained in place
    cache.get("score", {"k": 1}, compute, inputs={"model": a, "x": x})
    assert len(calls) == 5, "a network changed in place must not be served its old results"
    recs = [json.loads(p.read_text()) for p in tmp_path.glob("score-*.json")]
    assert all(set(r["params"]["inputs"]) == {"model", "x"} for r in recs), "the record names the inputs' digests"


def test_content_digests_of_the_package_objects():
    from mempkg import VPSDE
    from mempkg.core.digests import content_digest
    from mempkg.estimators.regimes import EmpiricalDenoiser
    from mempkg.models.exact import EmpiricalScore
    x = torch.randn(6, 2)
    assert content_digest(EmpiricalDenoiser(x)) == content_digest(EmpiricalDenoiser(x.clone()))
    assert content_digest(EmpiricalDenoiser(x)) != content_digest(EmpiricalDenoiser(x * 2))
    assert content_digest(EmpiricalScore(x, VPSDE())) != content_digest(EmpiricalScore(x, VPSDE(beta_max=5.0)))
    assert content_digest(["a", "b"]) != content_digest(["b", "a"])
    assert content_digest(x.float()) != content_digest(x.double())
    with pytest.raises(TypeError, match="Cannot identify"):
        content_digest(lambda: 0)


def test_architecture_digest_is_the_same_in_another_process():
    # a cache key must not hold anything a process makes up: addresses, or the order of a set under another hash seed
    import os
    import subprocess
    import sys

    from mempkg.core.digests import architecture_digest
    from mempkg.models.edm import EDMPrecond
    from mempkg.models.networks import unet_eps

    code = ("from mempkg.core.digests import architecture_digest; from mempkg.models.edm import EDMPrecond; "
            "from mempkg.models.networks import unet_eps; "
            "print(architecture_digest(EDMPrecond(unet_eps((1, 8, 8), 'digits', seed=3), sigma_data=0.75)))")
    here = architecture_digest(EDMPrecond(unet_eps((1, 8, 8), "digits", seed=0), sigma_data=0.75))
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=dict(os.environ, PYTHONHASHSEED=hash_seed))
        assert out.stdout.strip() == here
