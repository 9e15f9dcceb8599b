"""Ross et al.'s CFG norm as their code computes it (issue 30): the solver's grid, where its steps land, the
UNet labels it feeds on the authors' clock, and chapter 04's summary of it beside the book's procedure."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mempkg.book import profiles
from mempkg.book.cache import Cache
from mempkg.core.schedules import VPSDE
from mempkg.core.tensors import time_batch
from mempkg.estimators.guidance import T_START_AUTHORS, cfg_norm, cfg_norm_authors, pf_ode_forward

SD_LINEAR_BETA = (0.85, 12.0)          # the authors' reading of SD: beta from N beta_start to N beta_end


class ConstantFlow:
    """A conditional model whose eps is analytic and whose conditional PF-ODE velocity is a constant u = c:

        s(x, t | c) = -x - 2 c / beta(t)      =>   dx/dt = -1/2 beta(t) [x + s] = c,
        s(x, t | empty) = -2 x,               so  eps_c - eps_u = -sigma(t) [s_c - s_u] = -sigma(t) (x - 2 c / beta(t)).

    Euler's method is exact on a constant field, so a solver lands at x + c (t_end - t_start) for the t_end it
    steps to, and the CFG norm there is known in closed form. It records every time it is asked at."""

    def __init__(self, D=3, sde=None):
        self.sde = sde or VPSDE(*SD_LINEAR_BETA)
        self.data_shape = (D,)
        self.times = []

    def score(self, x, t, cond=None):
        tb = time_batch(t, x)
        self.times.extend(tb.tolist())
        if cond is None:
            return -2 * x
        return -x - 2 * cond / self.sde.beta(tb)[:, None].to(x)

    def cfg_at(self, y, t, cond):
        s, b = float(self.sde.sigma(t)), float(self.sde.beta(t))
        return s * (y - 2 * cond / b).norm(dim=1)


def data(B=4, D=3):
    g = torch.Generator().manual_seed(7)
    return torch.randn(B, D, generator=g, dtype=torch.float64), torch.randn(B, D, generator=g, dtype=torch.float64)


def test_authors_steps_land_one_step_past_t0_where_integration_says():
    """3 steps from t = 1e-4 to t0 = 0.01 on the authors' grid: h = (0.01 - 1e-4) / 2, the steps end at
    1e-4 + 3 h = 0.01495; the book's grid ends at 0.01. The CFG vector is read at t0 in both."""
    model = ConstantFlow()
    x, c = data()
    assert T_START_AUTHORS == 1e-4
    h = (0.01 - 1e-4) / 2
    torch.testing.assert_close(pf_ode_forward(model, x, 0.01, 3, cond=c, t_start=1e-4, past_t0=True),
                               x + c * (0.01 + h - 1e-4), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(pf_ode_forward(model, x, 0.01, 3, cond=c, t_start=1e-4), x + c * (0.01 - 1e-4),
                               rtol=1e-12, atol=1e-14)
    authors = cfg_norm_authors(model, x, c, t0=0.01, n_steps=3)
    torch.testing.assert_close(authors, model.cfg_at(x + c * 0.01485, 0.01, c), rtol=1e-10, atol=0)
    book = cfg_norm(model, x, c, t0=0.01, n_steps=3, t_start=1e-4)
    torch.testing.assert_close(book, model.cfg_at(x + c * 0.0099, 0.01, c), rtol=1e-10, atol=0)
    assert not torch.allclose(authors, book, rtol=1e-3)


def test_authors_solver_queries_its_grid_points_and_reads_out_at_t0():
    """The score is asked at the grid points 1e-4, 0.00505, 0.01 (one step from each) and at the read-out t0,
    never where the steps end; the book's grid from the same start is 1e-4, 0.0034, 0.0067."""
    model = ConstantFlow()
    x, c = data()
    cfg_norm_authors(model, x, c, t0=0.01, n_steps=3)
    assert sorted({round(t, 12) for t in model.times}) == pytest.approx([1e-4, 0.00505, 0.01], rel=1e-9)
    model.times.clear()
    cfg_norm(model, x, c, t0=0.01, n_steps=3, t_start=1e-4)
    assert sorted({round(t, 12) for t in model.times}) == pytest.approx([1e-4, 0.0034, 0.0067, 0.01], rel=1e-9)
    with pytest.raises(ValueError, match="n_steps >= 2"):
        cfg_norm_authors(model, x, c, n_steps=1)


def test_authors_labels_on_the_linear_beta_reading_of_a_tiny_sd():
    """On the authors' clock the UNet is fed N t: 0.1 at the start, 5.05 and 10 (the read-out) for t0 = 0.01;
    on SD's own schedule t = 1e-4 is label -0.9, and the authors' start is refused there."""
    from mempkg.data.captioned import Vocabulary
    from mempkg.models.stable_diffusion import with_schedule
    from mempkg.models.tiny_sd import TinyStableDiffusion

    net = TinyStableDiffusion(Vocabulary(), embed_dim=8, block_out_channels=(8, 16), seed=0).eval()
    labels = []
    hook = net.unet.register_forward_pre_hook(lambda mod, args: labels.extend(args[1].flatten().tolist()))
    try:
        x = torch.randn(2, *net.data_shape, generator=torch.Generator().manual_seed(0))
        c = net.encode_prompts(["a thick wide digit zero", "a thin digit one"])
        authors = with_schedule(net, "linear_beta")
        got = cfg_norm_authors(authors, x, c, t0=0.01, n_steps=3)
        assert got.shape == (2,) and torch.isfinite(got).all()
        assert sorted({round(v, 4) for v in labels}) == pytest.approx([0.1, 5.05, 10.0], abs=1e-4)
        assert float(net.timestep(1e-4)) == pytest.approx(-0.9)
        with pytest.raises(ValueError, match="first timestep"):
            cfg_norm_authors(net, x, c, t0=0.01)
    finally:
        hook.remove()


# -- chapter 04's summary ----------------------------------------------------------------------------------

SETTINGS = dataclasses.replace(profiles.CHAPTERS["laion_verbatims"]["tiny"], n_per_set=5, train_steps=2, n_show=2,
                               sample_steps=2, sweep_t0s=(0.003, 0.01, 0.1, 0.3))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from mempkg.studies import laion_verbatims

    cache = Cache(tmp_path_factory.mktemp("cfg_authors"), device="cpu")
    return laion_verbatims.run(SETTINGS, seed=2, device="cpu", cache=cache, n_boot=50, profile="tiny")


def test_chapter_04_summary_has_the_authors_cfg_norm_and_its_tables_repeat_it(result):
    s, a = result.summary, result.authors_cfg
    for key in ("auroc_cfg_norm_authors", "auroc_cfg_norm_authors_se", "cfg_start_spearman"):
        assert isinstance(s[key], float) and math.isfinite(s[key]), key
    assert 0 <= s["auroc_cfg_norm_authors"] <= 1 and s["auroc_cfg_norm_authors_se"] > 0
    assert -1 <= s["cfg_start_spearman"] <= 1
    proc = a.procedures
    assert proc.loc["AUROC, vs all non-memorized", "the authors' code"] == round(s["auroc_cfg_norm_authors"], 5)
    assert proc.loc["AUROC, vs all non-memorized", "this book"] == round(s["auroc_cfg_norm"], 5)
    assert proc.loc["start t", "the authors' code"] == 1e-4 and proc.loc["UNet label at start", "the authors' code"] == 0.1
    assert proc.loc["steps end at t", "the authors' code"] == pytest.approx(0.01 + (0.01 - 1e-4) / 2, abs=1e-5)
    assert proc.loc["Spearman with the authors' code", "the authors' code"] == 1.0
    assert a.start.loc["all images", "Spearman, start t = 1e-4 vs the book's start"] == round(s["cfg_start_spearman"], 4)
    assert a.start.loc["all images", "images"] == s["n_memorized"] + s["n_nonmemorized"]


def test_chapter_04_summary_has_the_small_t0_range_from_the_sweep(result):
    """The t0 <= 0.1 rows of the sweep, with s.e., and the largest minus the smallest AUROC among them."""
    s = result.summary
    by_t0 = s["cfg_auroc_by_t0"]
    assert by_t0["t0"] == [0.003, 0.01, 0.1]
    swept = result.sweep.auroc["cfg_norm"]["all non-memorized"]
    assert by_t0["auroc"] == [float(swept[t]) for t in by_t0["t0"]]
    assert all(e > 0 for e in by_t0["se"])
    assert s["cfg_auroc_range_t0_le_0_1"] == pytest.approx(max(by_t0["auroc"]) - min(by_t0["auroc"]), abs=1e-12)
    assert s["cfg_auroc_range_t0_le_0_1_se"] > 0
    assert np.isclose(result.sweep.stability.iloc[-1, 0], round(s["cfg_auroc_range_t0_le_0_1"], 4))
