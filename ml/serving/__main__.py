"""`python -m ml.serving`: serve a registered model's ONNX flavor, or add that flavor to a model.

    python -m ml.serving --model-uri DIR|URI [--host H] [--port P] [--workers N]
                         [--name NAME] [--version V] [--parent-pid PID]
    python -m ml.serving export MODEL_DIR

Serving answers MLflow's `/invocations` and `/ping` and KServe's Open Inference Protocol v2
(`ml.serving.app`). `--parent-pid` makes the server (and its workers) die with the process that
started it: the model gate passes its own pid, so a gate killed with SIGKILL leaves no server.
`export` adds `model.onnx` and the `onnx` flavor to an MLflow scikit-learn model directory
registered before the log step did it (exit 1 with the reason when the model cannot be exported).
Exit codes: 0 ok, 1 refused, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sluice.errors import SluiceError


def local_model(model_uri: str) -> str:
    if Path(model_uri).is_dir():
        return str(Path(model_uri).resolve())
    import mlflow.artifacts

    return mlflow.artifacts.download_artifacts(artifact_uri=model_uri)


def export(model_dir: str) -> int:
    from ml.serving.export import to_onnx, write_flavor

    path = Path(model_dir)
    if not (path / "MLmodel").is_file():
        print(
            f"python -m ml.serving: error: {path} is not an MLflow model directory (no MLmodel)",
            file=sys.stderr,
        )
        return 2
    import mlflow.sklearn

    try:
        written = write_flavor(path, to_onnx(mlflow.sklearn.load_model(str(path))))
    except SluiceError as exc:
        print(f"python -m ml.serving: refused: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written} and the onnx flavor in {path / 'MLmodel'}")
    return 0


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml.serving", description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model-uri", required=True, help="model directory or MLflow artifact URI")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8080)
    parser.add_argument("-w", "--workers", type=int, default=1)
    parser.add_argument(
        "--name", default="model", help="model name in OIP v2 routes (KServe: the service name)"
    )
    parser.add_argument("--version", default=None, help="model version reported by OIP v2 routes")
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this process (the starter) dies")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        parser = argparse.ArgumentParser(
            prog="python -m ml.serving export", description="add the onnx flavor"
        )
        parser.add_argument("model_dir")
        return export(parser.parse_args(argv[1:]).model_dir)
    args = serve_parser().parse_args(argv)
    from ml.serving.server import ServeOptions, serve

    try:
        model_dir = local_model(args.model_uri)
    except Exception as exc:  # MLflow's many error types: one line, usage/input exit code
        print(f"python -m ml.serving: error: cannot fetch {args.model_uri}: {exc}", file=sys.stderr)
        return 2
    serve(
        ServeOptions(model_dir, args.host, args.port, args.workers, args.name, args.version, args.parent_pid)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
