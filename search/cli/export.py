"""``dualsearch export MODEL --out DIR [--backend onnx-int8] [--calibration CORPUS]``: towers for ONNX
Runtime or OpenVINO, made locally."""

from __future__ import annotations

from dualsearch.cli.arguments import BACKEND_CHOICES
from dualsearch.defaults import DEFAULT_MODEL


def add_export_command(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="export towers to ONNX Runtime or OpenVINO (fp32 or int8) for fast CPU encoding",
        description="Export both towers of a model to ONNX Runtime or OpenVINO graphs, checked against PyTorch "
        "on fixed texts. The directory loads offline wherever --model is taken (index, reindex, serve).",
    )
    parser.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_MODEL,
        help="sentence-transformers path or hub id (default: the packaged towers)",
    )
    parser.add_argument("--out", required=True, help="directory to create")
    parser.add_argument(
        "--backend",
        choices=[backend for backend in BACKEND_CHOICES if backend != "torch"],
        default="onnx",
        help="onnx: fp32, the same vectors as PyTorch; onnx-int8: int8 weights, smaller and faster; openvino: "
        "OpenVINO, bfloat16 on CPUs that have it; openvino-int8: OpenVINO with int8 weights and activations, "
        "calibrated on --calibration (default onnx)",
    )
    parser.add_argument(
        "--calibration",
        metavar="CORPUS",
        help="documents to calibrate int8 activations on (openvino-int8; a seeded 300 of them): your own "
        "corpus, in any form `dualsearch index` reads",
    )
    parser.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from dualsearch.errors import InvalidInputError
    from dualsearch.towers.dual_encoder import DualEncoder
    from dualsearch.towers.export import export_towers
    from dualsearch.towers.exported import CALIBRATED_BACKENDS, OnnxEncoder

    calibration: list[str] = []
    if args.backend in CALIBRATED_BACKENDS:
        if not args.calibration:
            raise InvalidInputError(f"--backend {args.backend} calibrates on your documents: add --calibration CORPUS")
        from dualsearch.corpora.sources import read_corpus

        calibration = [document.encoding_text() for document in read_corpus(args.calibration)]
    elif args.calibration:
        raise InvalidInputError(f"--calibration is for {', '.join(CALIBRATED_BACKENDS)}; {args.backend} needs none")
    export_towers(DualEncoder.load(args.model), args.out, args.backend, calibration)
    query = OnnxEncoder.load(args.out).query_tower.config
    print(
        f"exported {args.model} ({args.backend}) to {args.out}; lowest cosine to PyTorch on the check texts "
        f"{query.checked_min_cosine:.6f}"
    )
    return 0
