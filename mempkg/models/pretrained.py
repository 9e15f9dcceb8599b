"""Pretrained diffusers pipelines by hub id or folder: what they are, what identifies their weights, and
loading them as score models (layer: models).

:func:`inspect_model` reads the folder's (or the hub repository's) ``model_index.json`` and configs before any
weight, so a wrong model fails in a second with a plain message (:class:`PretrainedError`); :func:`load_model`
then loads a Stable Diffusion pipeline (:class:`~mempkg.models.stable_diffusion.StableDiffusion`) or an
unconditional pixel-space DDPM pipeline (:class:`~mempkg.models.adapters.DDPMScoreModel`);
:func:`load_pretrained` does both in one call. The command line and the chapters that take a reader's
``model`` read models through here. :func:`weights_digest` identifies the weights by content (a hub id by its
snapshot's commit).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from huggingface_hub import hf_hub_download

from ..core.devices import resolve_device
from ..core.files import file_digest
from ..core.hub import local_only
from .adapters import DDPMScoreModel
from .stable_diffusion import is_local, load_stable_diffusion

SD_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "DDPMPipeline", "DDIMPipeline")
UNSUPPORTED = {   # model_index.json's _class_name -> why it is refused (read before any weight)
    "LDMPipeline": "a latent UNet under a VQ/KL autoencoder: its score lives in the latent space, and scoring "
                   "its pixels as a pixel-space DDPM would be wrong",
    "StableDiffusionXLPipeline": "SDXL has two text encoders and added size conditioning, which the Stable "
                                 "Diffusion score here does not feed",
    "DiTPipeline": "a class-conditional latent transformer (DiT), not a UNet",
}


class PretrainedError(ValueError):
    """A model id or folder that is not a pipeline this package reads, or cannot be reached: the message
    says what is wrong and what to do."""


def _reason(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx")


@dataclass
class ModelInfo:
    """What a model folder or hub id holds, read from its JSON configs only (no weights)."""

    kind: str                  # "stable_diffusion" or "ddpm"
    source: str                # absolute folder path or hub id
    local: bool
    native_size: int           # image side the model was made for (pixels)
    channels: int              # image channels it reads (3 for SD)
    latent_factor: int         # pixels per latent cell (SD's VAE: 8) or 1
    latent_channels: int
    levels: int                # UNet resolution levels: the latent side must be a multiple of 2^(levels - 1)
    configs: dict = field(default_factory=dict, repr=False)
    revision: Optional[str] = None   # hub ids: the commit of the cached snapshot the configs were read from

    def data_shape(self, size: int) -> tuple[int, int, int]:
        s = size // self.latent_factor
        return (self.latent_channels, s, s)

    def check_size(self, size: int) -> None:
        s, f = size, self.latent_factor
        m = 2 ** (self.levels - 1)
        if s % f or (s // f) % m:
            raise PretrainedError(f"image size {size} does not fit this model: the side must be a multiple of {f * m} "
                            f"({'the VAE divides it by ' + str(f) + ', then ' if f > 1 else ''}the UNet halves it "
                            f"{self.levels - 1} times); its native size is {self.native_size}.")


def _hub_problem(model_id: str, filename: str, e: BaseException) -> PretrainedError:
    names = {c.__name__ for c in type(e).__mro__}
    if "LocalEntryNotFoundError" in names or "ConnectionError" in names or "OfflineModeIsEnabled" in names:
        return PretrainedError(
            f"model {model_id}: {filename} is not in the local Hugging Face cache and the Hub cannot be reached "
            "(offline, or HF_HUB_OFFLINE=1). Fill the cache once with internet (`hf download "
            f"{model_id}`, or run this command online; it lands in ~/.cache/huggingface), or pass a local folder "
            "(pipeline.save_pretrained(folder)).")
    if "RepositoryNotFoundError" in names or "GatedRepoError" in names:
        return PretrainedError(f"model {model_id}: no such model on the Hugging Face Hub, or it is private or gated "
                         "(log in with `hf auth login`); a local folder must exist.")
    if "HFValidationError" in names:
        return PretrainedError(f"model {model_id} is neither an existing folder nor a valid Hub id ('org/name').")
    if "EntryNotFoundError" in names or "RemoteEntryNotFoundError" in names:
        return PretrainedError(f"model {model_id} has no {filename}: it is not a diffusers pipeline folder.")
    return PretrainedError(f"model {model_id}: could not fetch {filename} from the Hugging Face Hub ({_reason(e)}).")


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a model folder (any depth, by suffix), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def weights_digest(info: ModelInfo) -> str:
    """What identifies the weights a run scores with: 16 hex digits of sha256 over every weight file of a
    local folder (its path in the folder, size and bytes); for a hub id, ``hub@<commit>`` of the snapshot
    the configs were read from (the Hub names a revision's files by their content)."""
    if not info.local:
        return f"hub@{info.revision or 'unknown'}"
    files = weight_files(Path(info.source))
    if not files:
        raise PretrainedError(f"model {info.source} holds no weight file ({', '.join(WEIGHT_SUFFIXES)}); was it written "
                        "by save_pretrained?")
    size = sum(f.stat().st_size for f in files)
    if size > 500e6:
        print(f"Hashing the model's weights ({size / 1e9:.1f} GB) to identify them ...", file=sys.stderr, flush=True)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(info.source).as_posix()}|{f.stat().st_size}|{file_digest(f)}\n".encode())
    return h.hexdigest()[:16]


_SNAPSHOT: dict[str, str] = {}      # hub id -> commit of the snapshot its configs came from


def _read_config(model_id: str, local: bool, filename: str, required: bool = True) -> Optional[dict]:
    """A JSON file of a model folder or hub repo (from the local cache when offline); a local file that
    is absent gives None unless ``required``."""
    if local:
        path = Path(model_id).expanduser() / filename
        if not path.is_file():
            if required:
                raise PretrainedError(f"model {model_id} lacks {filename}; was it written by save_pretrained?")
            return None
    else:
        try:
            path = Path(hf_hub_download(model_id, filename, local_files_only=local_only()))
        except Exception as e:
            raise _hub_problem(model_id, filename, e) from None
        _SNAPSHOT[model_id] = path.parents[len(Path(filename).parts) - 1].name    # .../snapshots/<commit>/file
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PretrainedError(f"model {model_id}: {filename} is not readable JSON ({_reason(e)}).") from None


def inspect_model(model_id: str) -> ModelInfo:
    """Tell a Stable Diffusion pipeline from a pixel-space DDPM pipeline by its ``model_index.json`` and
    configs, and say what is missing when it is neither. Reads no weights."""
    local = is_local(model_id)
    if local:
        folder = Path(model_id).expanduser()
        if not folder.exists():
            raise PretrainedError(f"model {model_id}: no such folder (a local path must exist; a hub id looks like "
                            "'org/name').")
        if not folder.is_dir():
            raise PretrainedError(f"model {model_id} is a file; give the pipeline's folder (the one holding "
                            "model_index.json, unet/, scheduler/, ...).")
        source = str(folder.resolve())
    else:
        source = model_id
    index = _read_config(source, local, "model_index.json", required=not local)   # a local folder may lack it
    if index is not None:
        components = {k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0]}
        if local:
            components = {c for c in components if (Path(source) / c).is_dir()}
    else:
        components = {p.name for p in Path(source).iterdir() if p.is_dir()}
    pipeline = (index or {}).get("_class_name", "")
    what = f"model {model_id}" + (f" (a {pipeline})" if pipeline else "")
    if pipeline and pipeline not in SUPPORTED_PIPELINES:
        raise PretrainedError(f"{what}: {UNSUPPORTED.get(pipeline, 'this pipeline class is not read here')}. The "
                              f"package scores {', '.join(SUPPORTED_PIPELINES)} folders and hub ids; any other "
                              "denoiser D(x, sigma) can be wrapped in Python with mempkg.EDMDenoiser(D, sigma_data=...).")
    if "unet" not in components:
        raise PretrainedError(f"{what} has no unet/ subfolder. Expected a Stable Diffusion pipeline "
                        f"({', '.join(SD_COMPONENTS)}) or a pixel-space DDPM pipeline (unet/ with a UNet2DModel "
                        "and scheduler/), as save_pretrained writes them.")
    unet = _read_config(source, local, "unet/config.json")
    unet_class = unet.get("_class_name", "")
    sd_like = unet_class == "UNet2DConditionModel" or {"vae", "text_encoder"} & components
    if sd_like:
        missing = [c for c in SD_COMPONENTS if c not in components]
        if missing:
            lacks = ", ".join(m + "/" for m in missing)
            raise PretrainedError(f"{what} looks like a Stable Diffusion pipeline but lacks {lacks}: it needs "
                            f"{', '.join(SD_COMPONENTS)} (StableDiffusionPipeline.save_pretrained writes them).")
        vae = _read_config(source, local, "vae/config.json")
        f = 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
        channels, latent_channels, kind = 3, int(unet.get("in_channels", 4)), "stable_diffusion"
    elif unet_class == "UNet2DModel":
        if "scheduler" not in components:
            raise PretrainedError(f"{what} has a UNet2DModel but no scheduler/: the noise schedule it was trained with "
                            "(alphas_cumprod) comes from there; save the pipeline (unet + scheduler), not the UNet "
                            "alone.")
        if unet.get("num_class_embeds") or unet.get("class_embed_type"):
            raise PretrainedError(f"{what}: its UNet2DModel is class-conditional and a loaded pipeline is scored "
                                  "without labels; in Python, wrap it as DDPMScoreModel(unet, scheduler) and pass "
                                  "the class labels as cond.")
        f, channels, kind = 1, int(unet.get("in_channels", 3)), "ddpm"
        latent_channels = channels
        if channels not in (1, 3):
            raise PretrainedError(f"{what}: its UNet2DModel reads {channels}-channel images; images can be given as "
                            "grey (1) or RGB (3) only.")
    else:
        raise PretrainedError(f"{what}: its unet is a {unet_class or 'model of unknown class'}; the package reads "
                        "UNet2DConditionModel (Stable Diffusion) and UNet2DModel (pixel-space DDPM) networks.")
    scheduler = _read_config(source, local, "scheduler/scheduler_config.json", required=False)
    prediction = (scheduler or {}).get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise PretrainedError(f"{what}: its scheduler says the network predicts {prediction!r} (SD 2's 768 models "
                              "predict 'v_prediction'); the scores here read eps-prediction networks "
                              "(prediction_type 'epsilon').")
    size = unet.get("sample_size", 64)
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise PretrainedError(f"{what}: its UNet works on non-square {size[0]}x{size[1]} inputs; this command "
                            "centre-crops images to squares.")
        size = size[0]
    return ModelInfo(kind=kind, source=source, local=local, native_size=int(size) * f, channels=channels,
                     latent_factor=f, latent_channels=latent_channels,
                     levels=len(unet.get("block_out_channels", [0])), configs={"unet": unet, "index": index},
                     revision=None if local else _SNAPSHOT.get(source))


def resolve_dtype(name: str, info: ModelInfo, device: str):
    if name == "auto":
        return torch.float16 if info.kind == "stable_diffusion" and str(device).startswith("cuda") else torch.float32
    return getattr(torch, name)


def quiet_libraries() -> None:
    """Keep diffusers' and transformers' loading chatter (weight bars, advice to install accelerate) off the
    terminal: the command prints its own progress."""

    for name in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            logging = importlib.import_module(name)
            logging.set_verbosity_error()
            logging.disable_progress_bar()
        except (ImportError, AttributeError):
            pass


def load_model(info: ModelInfo, device: str, dtype, size: int):
    """The score model of an inspected folder or hub id, on ``device`` in ``dtype``, for images of side ``size``."""
    if info.kind == "stable_diffusion":
        try:
            model = load_stable_diffusion(info.source, device=device, dtype=dtype)
        except (OSError, ValueError) as e:
            raise PretrainedError(f"model {info.source}: could not load the Stable Diffusion pipeline "
                            f"({_reason(e)}).") from e
        prediction = getattr(model.scheduler.config, "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise PretrainedError(f"model {info.source} predicts {prediction!r} (e.g. SD 2's v-prediction); the scores "
                            "here read an eps-prediction network.")
        model.data_shape = info.data_shape(size)
        return model

    import diffusers  # heavy: diffusers takes seconds to import
    from diffusers import DDPMScheduler, UNet2DModel  # heavy: diffusers takes seconds to import

    try:
        offline = not info.local and local_only()
        unet = UNet2DModel.from_pretrained(info.source, subfolder="unet", torch_dtype=dtype, local_files_only=offline)
        sched_cfg = DDPMScheduler.load_config(info.source, subfolder="scheduler", local_files_only=offline)
        scheduler = getattr(diffusers, sched_cfg["_class_name"]).from_config(sched_cfg)
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise PretrainedError(f"model {info.source}: could not load the UNet and scheduler ({_reason(e)}).") from e
    try:
        model = DDPMScoreModel(unet, scheduler)
    except (TypeError, ValueError) as e:
        raise PretrainedError(f"model {info.source}: {e}") from None
    model.unet.to(device)
    model.data_shape = info.data_shape(size)
    return model


def load_pretrained(model_id: str, device: str = "auto", dtype: str = "auto", size: Optional[int] = None):
    """A pretrained pipeline (hub id or folder) as a score model, in one call: :func:`inspect_model`, then
    :func:`load_model` at image side ``size`` (default: the model's own), on ``device`` (``"auto"``: CUDA when
    present) in ``dtype`` (``"auto"``: float16 for Stable Diffusion on CUDA, else float32; or ``"float32"``,
    ...). Returns a :class:`~mempkg.models.adapters.DDPMScoreModel` (pixel space) or a
    :class:`~mempkg.models.stable_diffusion.StableDiffusion` (latent space) with ``data_shape`` set, and the
    :class:`ModelInfo`."""
    info = inspect_model(str(model_id))
    size = int(size or info.native_size)
    info.check_size(size)
    device = resolve_device(device)
    return load_model(info, device, resolve_dtype(dtype, info, device), size), info
