"""The bottom layer (layer: core): what every other layer stands on, and nothing above it.

* :mod:`~mempkg.core.protocol` -- the score-model protocol every estimator takes, and its checks.
* :mod:`~mempkg.core.schedules` -- the noise schedules: VP-SDE, EDM, discrete DDPM/Stable Diffusion.
* :mod:`~mempkg.core.tensors` -- small tensor helpers: times, broadcasting, per-image seeds, content hashes.
* :mod:`~mempkg.core.files` -- atomic writes, finite JSON, file digests.
* :mod:`~mempkg.core.devices` -- device resolution.
* :mod:`~mempkg.core.progress` -- progress bars for long loops.
* :mod:`~mempkg.core.hub` -- is the Hugging Face Hub reachable: offline mode at once when not.

Modules here import only the standard library, numpy, torch (huggingface_hub in ``hub``) and each other.
"""

__version__ = "0.1.0"
