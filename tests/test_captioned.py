"""The planted-verbatim data set (mempkg.data.captioned), the tiny text-conditional model (mempkg.models.tiny_sd)
and the chapter-4 scores on it (mempkg.studies.laion_verbatims)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import math  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mempkg.book.cache import Cache  # noqa: E402
from mempkg.core.protocol import check_inputs, check_score_model  # noqa: E402
from mempkg.estimators.complexity import png_size  # noqa: E402
from mempkg.estimators.guidance import cfg_norm, cfg_norm_generation  # noqa: E402
from mempkg.estimators.lid import flipd  # noqa: E402
from mempkg.models.train import CheckpointMismatch  # noqa: E402
from mempkg.data.captioned import (  # noqa: E402
    MEMORIZED,
    NON_MEMORIZED,
    RARE_WORDS,
    CaptionedDigits,
    Vocabulary,
    captioned_digits,
    evaluation_sets,
    ood_photos,
)
from mempkg.estimators.memorization import (  # noqa: E402
    auroc_bootstrap_se,
    auroc_se_table,
    auroc_table,
    oriented_auroc,
)
from mempkg.models.tiny_sd import (  # noqa: E402
    TinyStableDiffusion,
    generate,
    sd_schedule,
    train_tiny_sd,
    train_tiny_sd_cached,
)
from mempkg.studies.laion_verbatims import METRICS, memorization_scores, t0_sweep  # noqa: E402

SMALL = dict(embed_dim=8, block_out_channels=(8, 16), attention_head_dim=8, norm_num_groups=4)


@pytest.fixture(scope="module")
def ds():
    return captioned_digits(n_planted=6, n_copies=4, seed=0, complexity=png_size)


@pytest.fixture(scope="module")
def model(ds):
    return TinyStableDiffusion(ds.vocab, seed=0, **SMALL).eval()


# -- the data set -------------------------------------------------------------------------------

def test_planted_verbatims_are_repeated_with_unique_captions(ds):
    P, K = len(ds.planted), ds.n_copies
    assert len(ds) == len(ds.train) + P * (K - 1) == len(ds.captions) == len(ds.source)
    assert ds.x.shape == (len(ds), 1, 8, 8) and ds.x.min() >= -1 and ds.x.max() <= 1
    assert torch.equal(ds.x, ds.train.x[ds.source])
    counts = Counter(ds.source.tolist())
    assert all(counts[int(p)] == K for p in ds.planted)
    assert sum(1 for i, c in counts.items() if c == 1) == len(ds.train) - P
    # each planted caption is unique, names exactly its image's rows, and is made of rare words only
    assert len(set(ds.planted_captions)) == P
    for p, cap in zip(ds.planted.tolist(), ds.planted_captions):
        rows = [i for i, c in enumerate(ds.captions) if c == cap]
        assert len(rows) == K and all(int(ds.source[r]) == p for r in rows)
        assert all(w in RARE_WORDS for w in cap.split())
    ordinary = {c for i, c in enumerate(ds.train_captions) if i not in set(ds.planted.tolist())}
    assert not ordinary & set(ds.planted_captions)
    assert not any(w in RARE_WORDS for c in ordinary for w in c.split())
    assert ds.is_planted.sum() == P


def test_data_set_is_seeded(ds):
    again = captioned_digits(n_planted=6, n_copies=4, seed=0, complexity=png_size)
    assert torch.equal(again.planted, ds.planted) and again.captions == ds.captions
    assert torch.equal(again.training_tensor(), ds.training_tensor())
    other = captioned_digits(n_planted=6, n_copies=4, seed=1, complexity=png_size)
    assert not torch.equal(other.planted, ds.planted) or other.planted_captions != ds.planted_captions


def test_simpler_half_pool_draws_simple_images(ds):
    sizes = png_size(ds.train.x)
    assert ds.planted_pool == "simpler_half"
    assert sizes[ds.planted.numpy()].max() <= np.sort(sizes)[len(sizes) // 2]


def test_training_tensor_packs_images_and_tokens(ds):
    packed = ds.training_tensor()
    assert packed.shape == (len(ds), 64 + ds.vocab.max_len)
    assert torch.equal(packed[:, :64].reshape(-1, 1, 8, 8), ds.x)
    assert ds.vocab.decode(packed[:, 64:].long()) == [" ".join(c.split()) for c in ds.captions]


def test_vocabulary_pads_and_rejects_unknown_words():
    v = Vocabulary()
    assert torch.equal(v.encode([""]), torch.zeros(1, v.max_len, dtype=torch.long))     # empty = all pads
    ids = v.encode(["a thin digit one"])
    assert (ids[0, :4] > 0).all() and (ids[0, 4:] == 0).all()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.encode(["a purple digit one"])
    with pytest.raises(ValueError, match="at most"):
        v.encode([" ".join(["a"] * (v.max_len + 1))])
    with pytest.raises(ValueError, match="non-empty list of strings"):
        v.encode([3])


def test_describer_captions_follow_the_pixels(ds):
    x = -torch.ones(2, 1, 8, 8)
    x[0, 0, :, 3] = 1                       # a one-pixel vertical bar: little ink, no spread, no shear
    x[1, 0, :, 1:7] = 1                     # a six-pixel block: much ink, wide
    caps = ds.describer.captions(x, torch.tensor([1, 0]))
    assert caps[0] == "a thin narrow digit one"
    assert caps[1] == "a thick wide digit zero"
    assert ds.describer.captions(x[:1])[0].startswith("a thin narrow digit ")     # no label: nearest class mean


def test_ood_photos_and_evaluation_sets(ds):
    pytest.importorskip("skimage", reason="the out-of-distribution photographs come with scikit-image")
    x, names = ood_photos(crops_per_side=0, faces=False)
    assert x.shape == (len(names), 1, 8, 8) and torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    assert x.std() > 0.1                                   # real pictures, not constants
    sets = evaluation_sets(ds, n_per_set=10, seed=0, ood_crops_per_side=0, ood_faces=False)
    assert list(sets) == [MEMORIZED, *NON_MEMORIZED]
    assert len(sets[MEMORIZED]) == len(ds.planted)
    assert all(len(sets[s]) == 10 for s in NON_MEMORIZED)
    for s in sets.values():
        ds.vocab.encode(s.captions)                        # every caption is in the vocabulary
    assert not set(sets[MEMORIZED].ids) & set(sets["training, seen once"].ids)
    again = evaluation_sets(ds, n_per_set=10, seed=0, ood_crops_per_side=0, ood_faces=False)
    assert all(torch.equal(again[k].x, sets[k].x) and again[k].captions == sets[k].captions for k in sets)


def test_bad_data_set_arguments_are_refused():
    with pytest.raises(ValueError, match="planted_pool"):
        captioned_digits(planted_pool="hardest")
    with pytest.raises(ValueError, match="distinct"):
        captioned_digits(n_planted=40, n_rare_words=1)
    with pytest.raises(ValueError, match="n_copies"):
        captioned_digits(n_copies=0)
    with pytest.raises(ValueError, match="needs complexity"):
        captioned_digits(planted_pool="simpler_half")


# -- the model -----------------------------------------------------------------------------------

def test_sd_schedule_is_stable_diffusions():
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    sde = sd_schedule()
    for n in (0, 99, 999):
        t = (n + 1) / 1000
        assert float(sde.alpha(t)) ** 2 == pytest.approx(float(sched.alphas_cumprod[n]), rel=1e-10)
        assert float(sde.timestep(t)) == pytest.approx(n)


def test_model_has_stable_diffusions_interface(model, ds):
    check_score_model(model)
    for name in ("eps", "score", "timestep", "encode_prompts", "null_cond", "encode_images", "data_shape", "sde"):
        assert hasattr(model, name), name
    assert model.data_shape == (1, 8, 8)
    x = ds.train.x[:3]
    z = model.encode_images(x)
    assert torch.equal(z, x)                                             # pixel space: no VAE
    c = model.encode_prompts(ds.train_captions[:3])
    assert c.shape == (3, ds.vocab.max_len, SMALL["embed_dim"]) and not c.requires_grad
    assert torch.equal(model.null_cond(3), model.encode_prompts(["", "", ""]))
    check_inputs(model, z, c)
    with torch.no_grad():
        eps = model.eps(z, 0.1, c)
        assert torch.allclose(model.score(z, 0.1, c), -eps / float(model.sde.sigma(0.1)))
        assert torch.equal(model.eps(z, 0.1), model.eps(z, 0.1, model.null_cond(3)))   # None = empty caption
        assert not torch.allclose(eps, model.eps(z, 0.1))
    assert float(model.timestep(0.1)) == pytest.approx(99.0)


def test_estimators_run_on_the_model_and_the_empty_caption_gives_zero(model, ds):
    x = ds.train.x[:4]
    c = model.encode_prompts(ds.train_captions[:4])
    for cond in (c, model.null_cond(4)):
        f = flipd(model, x, 0.1, n_probes=1, cond=cond)
        assert f.shape == (4,) and torch.isfinite(f).all()
    assert torch.isfinite(cfg_norm(model, x, c)).all() and (cfg_norm(model, x, c) > 0).all()
    assert torch.equal(cfg_norm(model, x, model.null_cond(4)), torch.zeros(4, dtype=torch.float64))
    assert torch.equal(cfg_norm_generation(model, model.null_cond(2)), torch.zeros(2, dtype=torch.float64))
    g = cfg_norm_generation(model, c, n_steps=2, seed=3)
    assert torch.isfinite(g).all() and torch.equal(g, cfg_norm_generation(model, c, n_steps=2, seed=3))
    assert png_size(x).shape == (4,)


def test_memorization_scores_agree_with_the_estimators(model, ds):
    x, caps = ds.train.x[:5], ds.train_captions[:5]
    sc = memorization_scores(model, x, caps, t0=0.1, n_probes=1, batch_size=3, seed=7, progress=False)
    assert set(sc) == set(METRICS) and all(v.shape == (5,) and np.isfinite(v).all() for v in sc.values())
    c = model.encode_prompts(caps)
    assert np.allclose(sc["flipd_cond"][:3], flipd(model, x[:3], 0.1, 1, cond=c[:3], seed=7).numpy())
    assert np.allclose(sc["flipd_cond"][3:], flipd(model, x[3:], 0.1, 1, cond=c[3:], seed=10).numpy())
    assert np.allclose(sc["cfg_norm"], cfg_norm(model, x, c).numpy(), rtol=1e-5)
    assert np.array_equal(sc["png_size"], png_size(x).astype(float))
    sw = t0_sweep(model, x, caps, [0.01, 0.1], batch_size=3, seed=7)
    assert sw["flipd_cond"].shape == (2, 5)
    assert np.allclose(sw["flipd_cond"][1], sc["flipd_cond"]) and np.allclose(sw["cfg_norm"][0], sc["cfg_norm"],
                                                                             rtol=1e-5)
    with pytest.raises(ValueError, match="one caption per image"):
        memorization_scores(model, x, caps[:4], progress=False)


def test_bad_inputs_give_clear_errors(model, ds):
    x = ds.train.x[:2]
    with pytest.raises(ValueError, match="vocabulary"):
        model.encode_prompts(["a purple digit"])
    with pytest.raises(TypeError, match="encode_prompts"):
        model.eps(x, 0.1, ["a digit one", "a digit two"])
    with pytest.raises(ValueError, match="one embedding"):
        model.eps(x, 0.1, model.null_cond(3))
    with pytest.raises(ValueError, match=r"\[B, 1, 8, 8\]"):
        model.encode_images(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.encode_images(torch.full((2, 1, 8, 8), 5.0))
    with pytest.raises(ValueError, match="p_uncond"):
        train_tiny_sd(TinyStableDiffusion(ds.vocab, seed=0, **SMALL), ds, 1, p_uncond=1.5)
    with pytest.raises(TypeError, match="CaptionedDigits"):
        train_tiny_sd(TinyStableDiffusion(ds.vocab, seed=0, **SMALL), ds.x, 1)
    with pytest.raises(TypeError, match="tokenizer"):
        TinyStableDiffusion(None, **SMALL)


def test_generation_is_seeded_and_finite(model, ds):
    c = model.encode_prompts(ds.planted_captions[:2])
    a = generate(model, c, n_steps=4, guidance_scale=3.0, seed=1)
    assert a.shape == (2, 1, 8, 8) and torch.isfinite(a).all()
    assert torch.equal(a, generate(model, c, n_steps=4, guidance_scale=3.0, seed=1))
    assert generate(model, c, n_steps=4, seed=1, clip_x0=True).abs().max() <= 1 + 1e-5


def test_auroc_table_orients_each_metric_as_the_paper():
    mem = {"flipd_cond": [0.0, 1.0], "cfg_norm": [5.0, 6.0], "png_size": [10.0, 11.0]}
    non = {"flipd_cond": [10.0, 20.0], "cfg_norm": [1.0, 2.0], "png_size": [30.0, 40.0]}
    tab = auroc_table({"mem": mem, "non": non}, "mem", ["flipd_cond", "cfg_norm", "png_size"])
    assert (tab.to_numpy() == 1.0).all()
    assert list(tab.columns) == ["non", "all non-memorized"]


# -- training ------------------------------------------------------------------------------------

def _train(ds, seed, steps=3, **kw):
    m = TinyStableDiffusion(ds.vocab, seed=0, **SMALL)
    return m, train_tiny_sd(m, ds, steps, batch_size=16, seed=seed, progress=False, **kw)


def test_auroc_bootstrap_se_is_seeded_and_agrees_with_delong():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 400)
    se = auroc_bootstrap_se("cfg_norm", pos, neg, n_boot=2000, seed=1)
    assert se == auroc_bootstrap_se("cfg_norm", pos, neg, n_boot=2000, seed=1)
    # DeLong et al. (1988): var = var(V10) / n1 + var(V01) / n2 with the placement values V of each group
    psi = (pos[:, None] > neg[None, :]).astype(float)
    delong = math.sqrt(psi.mean(1).var(ddof=1) / 40 + psi.mean(0).var(ddof=1) / 400)
    assert oriented_auroc("cfg_norm", pos, neg) == pytest.approx(psi.mean())
    assert 0.9 * delong < se < 1.1 * delong                                 # measured: 0.0336 against 0.0335
    # perfect separation: every resample separates perfectly
    assert auroc_bootstrap_se("png_size", [1.0, 2.0], [5.0, 6.0, 7.0]) == 0.0
    scores = {"m": {"cfg_norm": pos}, "a": {"cfg_norm": neg[:200]}, "b": {"cfg_norm": neg[200:]}}
    table = auroc_se_table(scores, "m", ["cfg_norm"], n_boot=200)
    assert list(table.columns) == ["a", "b", "all non-memorized"] and (table.values > 0).all()
    with pytest.raises(ValueError, match="score"):
        auroc_bootstrap_se("fid", pos, neg)


def test_cfg_norm_on_the_stand_in_starts_at_label_0(model, ds):
    labels = []
    hook = model.unet.register_forward_pre_hook(lambda mod, args: labels.append(args[1].detach().clone()))
    x, caps = ds.train.x[:3], ds.train_captions[:3]
    try:
        memorization_scores(model, x, caps, metrics=["cfg_norm"], cfg_t0=0.01, progress=False)
    finally:
        hook.remove()
    labels = torch.cat([lab.flatten() for lab in labels])
    assert float(labels.min()) == pytest.approx(0.0, abs=1e-4)            # t = 1 / N, not 1e-4 (label -0.9)


def test_training_is_seeded(ds):
    m1, r1 = _train(ds, seed=0)
    m2, r2 = _train(ds, seed=0)
    assert r1.losses == r2.losses and all(np.isfinite(r1.losses))
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    _, r3 = _train(ds, seed=1)
    assert r3.losses != r1.losses
    # the caption encoder is trained jointly with the UNet
    fresh = TinyStableDiffusion(ds.vocab, seed=0, **SMALL)
    assert not torch.equal(fresh.text.token.weight, m1.text.token.weight)


def test_training_resumes_exactly(ds, tmp_path):
    ckpt = tmp_path / "tiny_sd.ckpt"
    _, full = _train(ds, seed=0, steps=4)

    def stop(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(ds, seed=0, steps=4, checkpoint=ckpt, checkpoint_every=2, callback=stop)
    _, resumed = _train(ds, seed=0, steps=4, checkpoint=ckpt, checkpoint_every=2)
    assert resumed.resumed_from == 2 and resumed.losses == full.losses
    with pytest.raises(CheckpointMismatch):
        _train(ds, seed=0, steps=4, checkpoint=ckpt, p_uncond=0.2)


def test_cached_training_trains_once(ds, tmp_path):
    cache = Cache(tmp_path / "cache")
    kw = dict(model_kwargs=SMALL, seed=0, batch_size=16, progress=False)
    m1, h1 = train_tiny_sd_cached(cache, "tiny_sd", ds, 2, **kw)
    m2, h2 = train_tiny_sd_cached(cache, "tiny_sd", ds, 2, **kw)
    assert (cache.misses, cache.hits) == (1, 1) and h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert isinstance(ds, CaptionedDigits) and not m2.training


# -- the full profile's path, on local files -------------------------------------------------------

def test_laion_sets_keep_the_first_retrieved_images_and_report_the_rest(tmp_path, monkeypatch):
    import pandas as pd
    from PIL import Image

    from mempkg.data import laion
    from mempkg.data.captioned import LAION_SETS, laion_evaluation_sets

    def image(name, value):
        p = tmp_path / f"{name}.png"
        Image.new("RGB", (20, 12), (value, 0, 0)).save(p)
        return str(p)

    def recs(set_name, n, missing):
        urls = [str(tmp_path / f"gone{set_name}{i}.png") if i in missing else image(f"{set_name}{i}", 10 * i)
                for i in range(n)]
        return laion.make_records(range(n), [f"{set_name} caption {i}" for i in range(n)], urls, set_name)

    webster = pd.DataFrame({"caption": ["mv a", "not mv", "mv b"],
                            "url": [image("w0", 1), image("w1", 2), image("w2", 3)],
                            "overfit_type": ["MV", "N", "MV"], "index": [5, 6, 7]})
    asked = {}

    def laion_aesthetics(n, seed, path=None):
        asked["laion"], asked["laion_path"] = n, path
        return recs("laion_aesthetics", n, missing={0, 2})

    def coco(n, seed, path=None):
        asked["coco_path"] = path
        return recs("coco", n, missing=set())

    monkeypatch.setattr(laion, "load_webster_groundtruth", lambda path=None: webster)
    monkeypatch.setattr(laion, "load_laion_aesthetics", laion_aesthetics)
    monkeypatch.setattr(laion, "load_coco", coco)
    monkeypatch.setattr(laion, "load_tuxemon", lambda path, n, seed: recs("tuxemon", 3, missing={1}))
    sets, report = laion_evaluation_sets(n_laion=3, n_coco=2, oversample=2.0, cache_dir=tmp_path / "cache",
                                         laion_path="local/laion.csv", coco_path="local/captions.json",
                                         progress=False)
    assert list(sets) == list(LAION_SETS) and asked["laion"] == 6
    assert (asked["laion_path"], asked["coco_path"]) == ("local/laion.csv", "local/captions.json")
    assert sets[LAION_SETS[0]].captions == ["mv a", "mv b"]                       # the memorized set comes first
    assert sets[LAION_SETS[1]].ids == ["1", "3", "4"]                             # the first 3 retrieved, in order
    assert report[LAION_SETS[1]]["missing"] == 2 and report[LAION_SETS[1]]["used"] == 3
    assert len(sets["COCO"]) == 2 and len(sets["Tuxemon"]) == 2
    x = sets[LAION_SETS[1]].images(2, size=16)
    assert x.shape == (2, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert len(sets[LAION_SETS[1]].head(1)) == 1 and sets["COCO"].head(None) is sets["COCO"]


def test_scores_can_be_restricted_to_some_metrics(model, ds):
    sc = memorization_scores(model, ds.train.x[:3], ds.train_captions[:3], metrics=["cfg_norm", "png_size"],
                             progress=False)
    assert set(sc) == {"cfg_norm", "png_size"}
    with pytest.raises(ValueError, match="metric"):
        memorization_scores(model, ds.train.x[:3], ds.train_captions[:3], metrics=["fid"], progress=False)


def test_linear_beta_reading_changes_only_the_schedule():
    """The linear-beta reading shares the networks and changes only the schedule."""
    from mempkg.models.stable_diffusion import with_schedule

    model = TinyStableDiffusion(Vocabulary(), embed_dim=8, block_out_channels=(8, 16), seed=0).eval()
    view = with_schedule(model, "linear_beta")
    assert view.unet is model.unet and view.text is model.text
    assert model.schedule == "scheduler" and view.schedule == "linear_beta"
    t = torch.tensor([0.01, 0.3], dtype=torch.float64)
    # the authors' label is N t, the scheduler's N t - 1; their sigma(0.3) is larger (0.73 vs 0.64)
    torch.testing.assert_close(view.timestep(t) - model.timestep(t), torch.ones(2, dtype=torch.float64))
    assert float(view.sde.sigma(0.3)) > float(model.sde.sigma(0.3)) + 0.05
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        back = with_schedule(view, "scheduler")
        torch.testing.assert_close(back.score(x, 0.3), model.score(x, 0.3))
        assert not torch.allclose(view.score(x, 0.3), model.score(x, 0.3))
    assert view.config() != model.config()          # cache keys tell the readings apart
    with pytest.raises(ValueError, match="schedule"):
        with_schedule(model, "cosine")
