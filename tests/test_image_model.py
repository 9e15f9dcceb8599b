"""Image eps-networks (diffusers UNet presets), seeded training with dropout and EMA, and
resuming an interrupted run from its checkpoint bit for bit."""

import pytest
import torch

from mempkg.book.cache import Cache
from mempkg.core.schedules import VPSDE
from mempkg.models.adapters import EpsModel, image_score_model
from mempkg.models.networks import UNET_PRESETS, MLPEps, unet_eps
from mempkg.models.train import CheckpointMismatch, load_checkpoint, train_dsm


class Interrupt(Exception):
    pass


def stop_after(k):
    """A training callback that "kills" the run once k steps are done."""
    def callback(step, loss):
        if step == k:
            raise Interrupt(f"stopped after step {step}")
    return callback


def tiny_unet(seed=0, dropout=0.1):
    """The digits preset at its smallest: 1x8x8, attention at 4x4, dropout on (to test its RNG)."""
    return unet_eps((1, 8, 8), "digits", seed=seed, block_out_channels=(8, 16), norm_num_groups=4, dropout=dropout)


def digits_like(n=12, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- presets ----------------------------------------------------------------------------------

def test_ddpm_cifar10_preset_is_the_authors_unet():
    unet = unet_eps((3, 32, 32), "ddpm_cifar10", seed=0)
    assert sum(p.numel() for p in unet.parameters()) == 35_746_307          # google/ddpm-cifar10-32
    sizes = []
    for m in unet.modules():
        if type(m).__name__ == "Attention":
            m.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[-2:])))
    assert {m.p for m in unet.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0} == {0.1}
    with torch.no_grad():
        out = unet(torch.randn(1, 3, 32, 32), torch.tensor([500.0])).sample
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
    assert set(sizes) == {(16, 16), (4, 4)}                  # attention at 16x16 (and the middle block)


def test_digits_preset_runs_on_8x8_and_errors_are_plain():
    unet = unet_eps((1, 8, 8), "digits", seed=0)
    with torch.no_grad():
        out = unet(torch.randn(5, 1, 8, 8), torch.rand(5) * 999).sample
    assert out.shape == (5, 1, 8, 8) and torch.isfinite(out).all()
    assert any(type(m).__name__ == "Attention" for m in unet.modules())
    with pytest.raises(ValueError, match="known: ddpm_cifar10, digits"):
        unet_eps((1, 8, 8), "huge")
    with pytest.raises(ValueError, match="multiples of 2"):
        unet_eps((1, 7, 7), "digits")
    with pytest.raises(ValueError, match="multiples of 8"):
        unet_eps((3, 20, 20), "ddpm_cifar10")
    assert set(UNET_PRESETS) >= {"ddpm_cifar10", "digits"}


def test_unet_seed_fixes_weights_without_touching_global_rng():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = tiny_unet(seed=3)
    after = torch.rand(1)
    assert torch.equal(before, after)
    assert same_weights(a, tiny_unet(seed=3)) and not same_weights(a, tiny_unet(seed=4))


def test_image_score_model_feeds_t_times_999():
    sde, unet = VPSDE(), tiny_unet(dropout=0.0).eval()
    model = image_score_model(unet, sde)
    assert isinstance(model, EpsModel) and model.time_scale == 999
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([0.01, 0.3, 0.9])
    with torch.no_grad():
        want = -unet(x, t * 999).sample / sde.sigma(t).float()[:, None, None, None]
        torch.testing.assert_close(model.score(x, t), want)


# -- training: determinism, resume, mismatch, atomic writes ------------------------------------------

def test_unet_training_is_deterministic_with_dropout():
    """UNet training is deterministic with dropout and leaves the global RNG alone."""
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        before = torch.rand(1)
        torch.manual_seed(11)
        model = image_score_model(tiny_unet(), VPSDE())
        runs.append(train_dsm(model, VPSDE(), digits_like(), 4, lr=1e-3, batch_size=8, ema_decay=0.9,
                              seed=2, progress=False))
        assert torch.equal(torch.rand(1), before)
    a, b = runs
    assert a.losses == b.losses and len(a.losses) == 4 and all(l > 0 for l in a.losses)
    assert same_weights(a.net, b.net) and same_weights(a.ema, b.ema) and not same_weights(a.net, a.ema)
    other = train_dsm(image_score_model(tiny_unet(), VPSDE()), VPSDE(), digits_like(), 4, lr=1e-3, batch_size=8,
                      seed=3, progress=False)
    assert other.losses != a.losses


CASES = {
    # a UNet with dropout and EMA through image_score_model (labels t * 999), cosine schedule with warm-up
    "unet": (lambda: image_score_model(tiny_unet(), VPSDE()), lambda: digits_like(),
             dict(lr=1e-3, batch_size=8, n_noise=2, warmup=2, ema_decay=0.9, t_sampling="log-uniform")),
    # the MLP of the von Mises chapter: full batch, several noise draws, constant schedule
    "mlp": (lambda: MLPEps(2, hidden=16, depth=2, seed=0),
            lambda: torch.randn(10, 2, generator=torch.Generator().manual_seed(1)),
            dict(lr=3e-3, n_noise=3, lr_schedule="constant", grad_clip=None)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_interrupted_and_resumed_equals_uninterrupted(case, tmp_path):
    build, make_data, kw = CASES[case]
    n_steps = 7
    ref = train_dsm(build(), VPSDE(), make_data(), n_steps, seed=5, progress=False, **kw)
    ckpt = tmp_path / "run.ckpt.pt"
    with pytest.raises(Interrupt):
        train_dsm(build(), VPSDE(), make_data(), n_steps, seed=5, progress=False, checkpoint=ckpt,
                  checkpoint_every=2, callback=stop_after(5), **kw)
    assert load_checkpoint(ckpt)["step"] == 4                 # the last multiple of checkpoint_every
    res = train_dsm(build(), VPSDE(), make_data(), n_steps, seed=5, progress=False, checkpoint=ckpt,
                    checkpoint_every=2, **kw)
    assert res.resumed_from == 4
    assert res.losses == ref.losses                           # bit-exact, the 4 saved ones included
    assert same_weights(res.net, ref.net)
    if ref.ema is not None:
        assert same_weights(res.ema, ref.ema)
    assert load_checkpoint(ckpt)["step"] == n_steps           # saved at the end
    again = train_dsm(build(), VPSDE(), make_data(), n_steps, seed=5, progress=False, checkpoint=ckpt, **kw)
    assert again.resumed_from == n_steps and again.losses == ref.losses and same_weights(again.net, ref.net)
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.name]          # no temporary file left


def test_checkpoint_of_another_run_is_refused(tmp_path):
    data, ckpt = digits_like(), tmp_path / "c.pt"
    base = dict(lr=1e-3, batch_size=8, seed=0, progress=False, checkpoint=ckpt, checkpoint_every=1)
    with pytest.raises(Interrupt):
        train_dsm(MLPEps((1, 8, 8), hidden=8, depth=1, seed=0), VPSDE(), data, 5, callback=stop_after(2), **base)
    for change, field in [(dict(lr=2e-3), "lr"), (dict(seed=1), "seed"), (dict(n_steps=6), "n_steps"),
                          (dict(net_seed=1), "init_sha256"), (dict(data=data.flip(-1)), "data_sha256")]:
        kw = dict(base, **{k: v for k, v in change.items() if k not in ("net_seed", "data", "n_steps")})
        net = MLPEps((1, 8, 8), hidden=8, depth=1, seed=change.get("net_seed", 0))
        with pytest.raises(CheckpointMismatch, match=field):
            train_dsm(net, VPSDE(), change.get("data", data), change.get("n_steps", 5), **kw)
    assert load_checkpoint(ckpt)["step"] == 2                 # refused, not overwritten
    ckpt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="delete it"):
        train_dsm(MLPEps((1, 8, 8), hidden=8, depth=1, seed=0), VPSDE(), data, 5, **base)


def test_a_killed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt, real_save, calls = tmp_path / "c.pt", torch.save, []

    def dying_save(obj, f):                  # the second checkpoint write dies half-way
        calls.append(1)
        if len(calls) == 2:
            f.write(b"partial")
            raise KeyboardInterrupt
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train_dsm(MLPEps(2, hidden=8, depth=1, seed=0), VPSDE(), torch.randn(6, 2), 6, seed=0, progress=False,
                  checkpoint=ckpt, checkpoint_every=2)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"] and load_checkpoint(ckpt)["step"] == 2


def test_cache_model_resumes_keeps_raw_and_ema_and_drops_the_checkpoint(tmp_path):
    cache, params, sde = Cache(tmp_path), {"preset": "tiny", "steps": 6}, VPSDE()
    build = lambda: image_score_model(tiny_unet(), sde)                              # noqa: E731
    key = cache.model_params(params, build)                  # what cache.model stores the network under
    ckpt = cache.checkpoint_path("unet", key)
    assert ckpt.parent == tmp_path and ckpt.name.startswith("unet-") and ckpt != cache.paths("unet", key)[0]
    kw = dict(lr=1e-3, batch_size=8, ema_decay=0.9, seed=1, progress=False)
    ref = train_dsm(image_score_model(tiny_unet(), sde), sde, digits_like(), 6, **kw)
    fits = []

    def fit(callback=None):
        def run(net):
            fits.append(1)
            return train_dsm(net, sde, digits_like(), 6, checkpoint=ckpt, checkpoint_every=2, callback=callback, **kw)
        return run

    with pytest.raises(Interrupt):
        cache.model("unet", params, build, fit(stop_after(3)))
    assert ckpt.exists() and cache.load("unet", key) is None
    net, hist = cache.model("unet", params, build, fit())
    assert not ckpt.exists() and hist == {"losses": ref.losses} and same_weights(net, ref.net)
    ema, hist2 = cache.model("unet", params, build, fit(), weights="ema")
    assert len(fits) == 2 and hist2 == hist and same_weights(ema, ref.ema)
    assert not net.training and not ema.training
    with pytest.raises(ValueError, match="'raw' or 'ema'"):
        cache.model("unet", params, build, fit(), weights="swa")
    cache.model("lin", {}, lambda: torch.nn.Linear(2, 2), lambda net: {"losses": []})
    with pytest.raises(ValueError, match="no EMA weights"):
        cache.model("lin", {}, lambda: torch.nn.Linear(2, 2), lambda net: {"losses": []}, weights="ema")
