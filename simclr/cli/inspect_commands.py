"""``simclr report``, ``simclr embed`` and ``simclr export``: look at a run, take its encoder away."""

from __future__ import annotations

import argparse
from pathlib import Path

from simclr.cli.options import print_json_last
from simclr.errors import SimCLRError

_EXPORT_FORMATS = ("safetensors", "onnx", "torchscript")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``report``, ``embed`` and ``export`` sub-commands to ``simclr``."""
    report = commands.add_parser("report", help="write RUN/report.html: curves, augmentations, embedding map, neighbours",
                                 description="A self-contained HTML page (images inlined) of a run: training curves, the augmentation grid, a t-SNE map of test embeddings, nearest-neighbour retrieval and the evaluation table.")
    _add_run_options(report)
    report.add_argument("--points", type=int, default=2000, help="at most this many test images in the t-SNE map (default 2000)")
    report.add_argument("--queries", type=int, default=8, help="query images in the retrieval figure (default 8)")
    report.add_argument("--k", type=int, default=5, help="neighbours shown per query (default 5)")
    report.set_defaults(handler=_run_report)

    embed = commands.add_parser("embed", help="save h of every image of a dataset (.npy or .safetensors)",
                                description="Features h of a dataset in dataset order, with labels and file paths alongside: OUT.npy + OUT.labels.npy + OUT.csv, or OUT.safetensors (features, labels, paths in its metadata) + OUT.csv.")
    _add_run_options(embed)
    embed.add_argument("--output", "--out", dest="out", type=Path, required=True, help="features file: PATH.npy or PATH.safetensors")
    embed.add_argument("--split", choices=("all", "pretrain", "train", "test"), default="all",
                       help="all (default): train then test for labelled data, else the pretraining images")
    embed.add_argument("--batch-size", type=int, help="images per forward pass (default: the run's eval.batch_size)")
    embed.set_defaults(handler=_run_embed)

    export = commands.add_parser("export", help="write the encoder alone (images -> h) as safetensors, ONNX or TorchScript",
                                 description="The encoder with its input normalisation: float RGB images in [0,1] of the run's image size S, [B,3,S,S] -> h [B,D]. Loads without this package (TorchScript: torch.jit.load; ONNX: onnxruntime; safetensors: torchvision ResNet names plus metadata).")
    export.add_argument("run", type=Path, help="run folder written by 'simclr pretrain'")
    export.add_argument("--format", choices=_EXPORT_FORMATS, default="safetensors", help="safetensors (default) | onnx | torchscript")
    export.add_argument("--output", "--out", dest="out", type=Path, help="output file (default: RUN/export/encoder.<format extension>)")
    export.add_argument("--checkpoint", type=Path, help="a checkpoint file instead of the run's newest good one")
    export.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line of stdout")
    export.set_defaults(handler=_run_export)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by 'simclr pretrain'")
    parser.add_argument("--data", help="other data than the run's (built-in name, torchvision name or folder)")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint file instead of the run's newest good one")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: the run's)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line of stdout")


def _at_least(name: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise SimCLRError(f"{name} must be >= {low}, got {value}")


def _run_report(args: argparse.Namespace) -> int:
    from simclr.report import write_report

    _at_least("--points", args.points, 1)
    _at_least("--queries", args.queries, 1)
    _at_least("--k", args.k, 1)
    path = write_report(args.run, args.checkpoint, args.data, args.device, args.points, args.queries, args.k)
    print(f"report: {path}")
    if args.json:
        print_json_last({"report": str(path), "figures": sorted(str(p) for p in (args.run / "report").glob("*.png"))})
    return 0


def _run_embed(args: argparse.Namespace) -> int:
    from simclr.export import encoder_from_model
    from simclr.report import embed_splits, save_embeddings
    from simclr.report.embeddings import SUFFIXES
    from simclr.runs import load_config_data, load_run_config, load_run_model, resolve_device

    _at_least("--batch-size", args.batch_size, 1)
    if args.out.suffix.lower() not in SUFFIXES:  # checked before minutes of feature extraction
        raise SimCLRError(f"--output must end in {' or '.join(SUFFIXES)}, got '{args.out.name}'")
    config = load_run_config(args.run)
    c = config.data
    data = load_config_data(config, args.data)
    model, source = load_run_model(config, args.run, data, args.checkpoint)
    device = resolve_device(args.device or config.train.device)
    embeddings = embed_splits(model.to(device), data, args.split, c.image_size, device, args.batch_size or config.eval.batch_size, c.workers or 0)
    info = encoder_from_model(model.cpu(), config).info.to_metadata()
    metadata = {**info, "format": "simclr-embeddings-v1", "encoder": source, "data": data.name}
    written = save_embeddings(embeddings, args.out, metadata)
    rows, dim = embeddings.features.shape
    print(f"embedded {rows} images ({dim}-d h, {source}) -> {', '.join(str(p) for p in written)}")
    if args.json:
        print_json_last({"rows": rows, "dim": dim, "files": [str(p) for p in written], "encoder": source, "data": data.name})
    return 0


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from simclr.export import FORMATS, export_encoder, load_run_encoder, onnx_max_difference

    encoder, source = load_run_encoder(args.run, args.checkpoint)
    out = args.out or args.run / "export" / f"encoder{FORMATS[args.format]}"
    export_encoder(encoder, out, args.format)
    size = encoder.info.image_size
    print(f"{args.format} encoder ({source}): {out}  input float RGB [B,3,{size},{size}] in [0,1] -> h [B,{encoder.info.feature_dim}]")
    difference = None
    if args.format == "onnx":
        images = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0))
        difference = onnx_max_difference(out, encoder, images)
        if difference is None:
            print("onnxruntime is not installed: the ONNX file was not checked (pip install onnxruntime)")
        else:
            print(f"checked with onnxruntime: max |h_onnx - h_torch| = {difference:.2e} on 4 images")
            if difference > 1e-3:
                raise SimCLRError(f"the ONNX export of '{args.run}' disagrees with PyTorch (max |Δh| = {difference:.2e})")
    if args.json:
        print_json_last({"format": args.format, "file": str(out), "encoder": source, "arch": encoder.info.arch, "image_size": size,
                         "feature_dim": encoder.info.feature_dim, "onnx_max_difference": difference})
    return 0
