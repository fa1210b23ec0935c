"""``dualsearch export MODEL --out DIR [--backend onnx-int8]``: towers for ONNX Runtime or OpenVINO, made
locally."""

from __future__ import annotations

from dualsearch.defaults import DEFAULT_MODEL


def add_export_command(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="export towers to ONNX (fp32 or int8) for fast CPU encoding",
        description="Export both towers of a model to ONNX Runtime graphs, checked against PyTorch on fixed "
        "texts. The directory loads offline wherever --model is taken (index, reindex, serve).",
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
        choices=("onnx", "onnx-int8", "openvino"),
        default="onnx",
        help="onnx: fp32, the same vectors as PyTorch; onnx-int8: int8 weights, smaller and faster; openvino: "
        "OpenVINO, bfloat16 on CPUs that have it (default onnx)",
    )
    parser.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from dualsearch.encoder import DualEncoder
    from dualsearch.onnx_export import export_towers
    from dualsearch.onnx_towers import OnnxEncoder

    export_towers(DualEncoder.load(args.model), args.out, args.backend)
    query = OnnxEncoder.load(args.out).query_tower.config
    print(
        f"exported {args.model} ({args.backend}) to {args.out}; lowest cosine to PyTorch on the check texts "
        f"{query.checked_min_cosine:.6f}"
    )
    return 0
