"""The encoder alone (images -> h) as a file others can load: safetensors, TorchScript or ONNX.

Every format takes float RGB images in [0, 1], shape [B, 3, S, S] with S the run's
``data.image_size``, and normalises them inside, so no preprocessing constants are needed.

* safetensors: the ResNet's weights under torchvision's names (``conv1.weight``,
  ``layer1.0.bn1.running_mean`` …, no ``fc``) plus metadata in the header: architecture,
  width, stem, mean/std, image size, feature dim. ``load_encoder`` rebuilds the network;
  at width 1, ``torchvision.models.<arch>()`` with ``fc = nn.Identity()`` (and, for the CIFAR
  stem, a 3x3 stride-1 ``conv1`` and ``maxpool = nn.Identity()``) loads the tensors as they are.
  A timm encoder (``arch`` ``timm/NAME``) keeps timm's names, and the header adds
  ``timm_model`` and ``timm_version``: ``timm.create_model(NAME, num_classes=0)`` (plus
  ``img_size=S`` for ViTs) loads the tensors as they are.
* TorchScript: ``torch.jit.load(path)`` in any PyTorch, metadata in the archive's ``simclr.json``.
* ONNX: input ``images``, output ``h``, dynamic batch axis; run it with onnxruntime.
"""

from __future__ import annotations

import copy
import json
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from simclr.augment import EvalTransform
from simclr.config import Config, config_from_dict
from simclr.errors import SimCLRError
from simclr.models import Normalize, SimCLR, build_encoder, is_timm_arch, use_cifar_stem
from simclr.models.timm_encoder import timm_name, timm_version

FORMATS: dict[str, str] = {"safetensors": ".safetensors", "torchscript": ".torchscript.pt", "onnx": ".onnx"}
MARKER = "simclr-encoder-v1"


@dataclass(frozen=True)
class EncoderInfo:
    """What it takes to rebuild an encoder and feed it: stored beside the weights."""

    arch: str
    width: float
    cifar_stem: bool
    image_size: int
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_metadata(self) -> dict[str, str]:
        """String-valued header entries (safetensors metadata must be str -> str)."""
        meta = {key: json.dumps(value) for key, value in asdict(self).items()}
        meta["format"] = MARKER
        meta["input"] = f"float32 RGB images in [0, 1], shape [B, 3, {self.image_size}, {self.image_size}]; normalisation is inside"
        meta["output"] = f"h, shape [B, {self.feature_dim}]"
        if is_timm_arch(self.arch):  # the tensors keep timm's names: timm.create_model(timm_model, num_classes=0) takes them
            meta.update(timm_model=timm_name(self.arch), timm_version=timm_version())
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> EncoderInfo:
        if meta.get("format") != MARKER:
            raise SimCLRError(f"'{source}' is not a simclr encoder file (no '{MARKER}' marker in its metadata)")
        try:
            values = {key: json.loads(meta[key]) for key in cls.__dataclass_fields__}
        except (KeyError, json.JSONDecodeError) as error:
            raise SimCLRError(f"'{source}' has incomplete encoder metadata ({error})") from None
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})


class ImageEncoder(nn.Module):
    """f with its input normalisation: images [B,3,S,S] float in [0,1] -> h [B, feature_dim].

    S is ``info.image_size``, the side the run trained at (its ``data.image_size``); other
    sizes run too (global average pooling) but give features the encoder never saw.
    ``preprocess`` turns one uint8 image [3,H,W] of any size into the [3,S,S] input
    (resize the shorter side to S, centre crop), as evaluation does.
    """

    def __init__(self, encoder: nn.Module, info: EncoderInfo) -> None:
        super().__init__()
        self.normalize = Normalize(info.mean, info.std)
        self.encoder = encoder
        self.info = info
        self.eval()

    @torch.jit.unused
    def preprocess(self, image: Tensor) -> Tensor:
        """uint8 [3,H,W] (or float in [0,1]) -> float32 [3,S,S] in [0,1]."""
        return EvalTransform(self.info.image_size)(image)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B,3,S,S] float images in [0,1] -> h: [B, feature_dim]."""
        return self.encoder(self.normalize(x))


def encoder_from_model(model: SimCLR, config: Config) -> ImageEncoder:
    """A copy of ``model``'s f and normalisation, described by the run's resolved ``config``."""
    size = config.data.image_size or 224
    timm = is_timm_arch(config.model.arch)  # a timm model keeps its own widths and stem
    info = EncoderInfo(
        arch=config.model.arch,
        width=1.0 if timm else float(config.model.width),
        cifar_stem=False if timm else use_cifar_stem(size, config.model.cifar_stem),
        image_size=int(size),
        feature_dim=model.feature_dim,
        mean=tuple(float(v) for v in model.normalize.mean.flatten()),  # type: ignore[arg-type]
        std=tuple(float(v) for v in model.normalize.std.flatten()),  # type: ignore[arg-type]
    )
    return ImageEncoder(copy.deepcopy(model.encoder).cpu().float(), info)


def load_run_encoder(run_dir: Path, checkpoint: Path | None = None) -> tuple[ImageEncoder, str]:
    """The encoder of a run folder's newest good checkpoint (or ``checkpoint``); no data needed."""
    from simclr.runs import load_run_config, load_run_model

    config = load_run_config(run_dir)
    model, source = load_run_model(config, run_dir, checkpoint=checkpoint)
    return encoder_from_model(model, config), source


def save_safetensors(encoder: ImageEncoder, path: Path) -> Path:
    """f's state dict under torchvision's names, metadata in the header."""
    from safetensors.torch import save_file

    tensors = {key: value.detach().contiguous() for key, value in encoder.encoder.state_dict().items()}
    save_file(tensors, str(path), metadata=encoder.info.to_metadata())
    return path


def save_torchscript(encoder: ImageEncoder, path: Path) -> Path:
    """A scripted module (any batch size and input size), metadata as ``simclr.json`` inside."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch marks TorchScript deprecated; it still loads everywhere
        scripted = torch.jit.script(encoder.eval())
        torch.jit.save(scripted, str(path), _extra_files={"simclr.json": json.dumps(encoder.info.to_metadata())})
    return path


def save_onnx(encoder: ImageEncoder, path: Path) -> Path:
    """ONNX graph, input ``images`` [batch,3,S,S] -> output ``h`` [batch,D]; needs the ``onnx`` package."""
    import inspect

    size = encoder.info.image_size
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    kwargs: dict[str, Any] = {"input_names": ["images"], "output_names": ["h"], "dynamic_axes": {"images": {0: "batch"}, "h": {0: "batch"}}}
    # The TorchScript-based exporter works from torch 2.4 on; newer torch needs dynamo=False to pick it.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(encoder.eval(), (example,), str(path), **kwargs)
    except (ImportError, getattr(torch.onnx, "OnnxExporterError", ImportError)) as error:
        if isinstance(error, ImportError) or "not installed" in str(error):
            raise SimCLRError("ONNX export needs the onnx package: pip install onnx onnxruntime (or 'simclr[export]')") from None
        raise
    return path


def export_encoder(encoder: ImageEncoder, path: Path, fmt: str) -> Path:
    """Write ``encoder`` as ``fmt`` (``FORMATS``) to ``path`` (parent folders created)."""
    writers = {"safetensors": save_safetensors, "torchscript": save_torchscript, "onnx": save_onnx}
    if fmt not in writers:
        raise SimCLRError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return writers[fmt](encoder.eval(), path)
    except (RuntimeError, TypeError, ValueError, AttributeError) as error:
        if not is_timm_arch(encoder.info.arch):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SimCLRError(f"{fmt} export of {encoder.info.arch} failed ({reason}); --format safetensors keeps its weights") from None


def onnx_max_difference(path: Path, encoder: ImageEncoder, images: Tensor) -> float | None:
    """max |h_onnx - h_torch| on ``images`` [B,3,S,S] with onnxruntime, or None if it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (h_onnx,) = session.run(["h"], {"images": images.numpy()})
    with torch.no_grad():
        h_torch = encoder.eval()(images)
    return float((torch.from_numpy(h_onnx) - h_torch).abs().max())


def _is_torchscript(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def load_encoder(path: str | Path) -> nn.Module:
    """An encoder in eval mode mapping images [B,3,S,S] float in [0,1] to h [B, D].

    ``path``: a ``.safetensors`` file from ``simclr export``, a TorchScript export, a run
    folder (its newest good checkpoint) or a simclr checkpoint file. Every result but the
    TorchScript one is an ``ImageEncoder`` with ``.info`` (S, D, mean/std …) and ``.preprocess``.
    """
    path = Path(path)
    if path.is_dir():
        return load_run_encoder(path)[0]
    if not path.is_file():
        raise SimCLRError(f"encoder file '{path}' does not exist")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    if path.suffix == ".onnx":
        raise SimCLRError(f"'{path}' is an ONNX file; run it with onnxruntime.InferenceSession, not load_encoder")
    if zipfile.is_zipfile(path) and _is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path), map_location="cpu").eval()
    from simclr import checkpoint as ckpt
    from simclr.runs import build_model

    state = ckpt.load_file(path)
    config = config_from_dict(state["config"])
    model = build_model(config, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    model.load_state_dict(state["model"])
    return encoder_from_model(model, config)


def _load_safetensors(path: Path) -> ImageEncoder:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            info = EncoderInfo.from_metadata(handle.metadata() or {}, str(path))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except SafetensorError as error:
        raise SimCLRError(f"'{path}' is not a readable safetensors file ({error})") from None
    encoder = build_encoder(info.arch, info.width, info.cifar_stem, image_size=info.image_size)
    try:
        encoder.load_state_dict(tensors)
    except RuntimeError as error:
        raise SimCLRError(f"'{path}' does not match its own metadata ({str(error).splitlines()[0]})") from None
    return ImageEncoder(encoder, info)
