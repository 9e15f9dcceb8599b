"""Tiny, randomly initialised diffusers checkpoints saved in diffusers' on-disk layout, built offline in
seconds: a Stable Diffusion pipeline (16 px images -> 4x8x8 latents) and a DDPM pixel-space pipeline.
Shared by tests/test_stable_diffusion.py and tests/test_cli.py."""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import torch

# SD v1's scheduler config (scheduler/scheduler_config.json of stable-diffusion-v1-5)
SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                    skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)


def write_tiny_tokenizer(folder: Path) -> int:
    """A CLIP BPE tokenizer in SD's on-disk layout (vocab.json, merges.txt): letters, words 'cat', 'dog'.
    Returns the vocabulary size."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in string.ascii_lowercase:
            vocab[c + suffix] = len(vocab)
    merges = ["c a", "ca t</w>", "d o", "do g</w>"]
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(dict(
        tokenizer_class="CLIPTokenizer", model_max_length=77, bos_token="<|startoftext|>",
        eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>")))
    return len(vocab)


def save_tiny_sd(root: Path) -> Path:
    """A tiny SD pipeline (PNDM scheduler with SD v1's config) saved under ``root / "sd"``; returns that folder."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = Path(root)
    n_vocab = write_tiny_tokenizer(root / "tokenizer_src")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
        vae = AutoencoderKL(
            block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=32,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, vocab_size=n_vocab, max_position_embeddings=77))
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer_src"), unet=unet,
        scheduler=PNDMScheduler(**SD_SCHEDULER), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(root / "sd")
    # SD v1.5's repo keeps the tokenizer as vocab.json + merges.txt: load through that path too
    shutil.rmtree(root / "sd" / "tokenizer")
    shutil.copytree(root / "tokenizer_src", root / "sd" / "tokenizer")
    return root / "sd"


def save_tiny_ddpm(root: Path, channels: int = 3, size: int = 8, seed: int = 0) -> Path:
    """A tiny unconditional pixel-space DDPMPipeline (UNet2DModel with attention + DDPMScheduler, 1000 steps)
    with weights drawn from ``seed``, saved under ``root / "ddpm"``; returns that folder."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DModel(
            sample_size=size, in_channels=channels, out_channels=channels, block_out_channels=(16, 32),
            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            layers_per_block=1, norm_num_groups=8, attention_head_dim=8)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(Path(root) / "ddpm")
    return Path(root) / "ddpm"
