"""How long Sluice waits for an MLflow tracking server: a stated timeout and retry budget.

MLflow's own defaults (a 120 s timeout, 7 retries with backoff factor 2) let one unanswered call
wait about four minutes, and a pipeline step retried three times multiplied that. Sluice states
its budget instead: each HTTP request waits at most MLFLOW_HTTP_REQUEST_TIMEOUT seconds and is
retried MLFLOW_HTTP_REQUEST_MAX_RETRIES times (backoff factor and jitter below), and a pipeline
step that talks to MLflow is retried SLUICE_MLFLOW_STEP_RETRIES times, SLUICE_MLFLOW_STEP_BACKOFF_S
seconds apart, doubling. With the defaults a server that is down (nothing listening) fails a run
in about a minute; a server that accepts connections but never answers costs up to
timeout * (retries + 1) per attempt on top. Values the user set in the environment win.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from sluice.errors import SluiceError

# MLflow's own variables (mlflow.environment_variables), with Sluice's defaults.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
STEP_RETRIES_ENV = "SLUICE_MLFLOW_STEP_RETRIES"
STEP_BACKOFF_ENV = "SLUICE_MLFLOW_STEP_BACKOFF_S"
DEFAULT_STEP_RETRIES = 3
DEFAULT_STEP_BACKOFF_S = 5
STEP_BACKOFF_FACTOR = 2


@dataclass(frozen=True)
class Budget:
    """The HTTP settings every MLflow-talking task gets, and the KFP retry policy of those steps."""

    http: dict[str, str] = field(default_factory=lambda: dict(HTTP_DEFAULTS))
    step_retries: int = DEFAULT_STEP_RETRIES
    step_backoff_s: int = DEFAULT_STEP_BACKOFF_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Budget:
        http = {name: environ.get(name) or default for name, default in HTTP_DEFAULTS.items()}
        for name, value in http.items():
            _number(name, value)
        retries = _number(STEP_RETRIES_ENV, environ.get(STEP_RETRIES_ENV), DEFAULT_STEP_RETRIES)
        backoff = _number(STEP_BACKOFF_ENV, environ.get(STEP_BACKOFF_ENV), DEFAULT_STEP_BACKOFF_S)
        return cls(http=http, step_retries=int(retries), step_backoff_s=int(backoff))

    def retry(self) -> dict[str, object]:
        """Arguments of `PipelineTask.set_retry` for a step that talks to MLflow."""
        return {
            "num_retries": self.step_retries,
            "backoff_duration": f"{self.step_backoff_s}s",
            "backoff_factor": STEP_BACKOFF_FACTOR,
        }


def _number(name: str, value: str | None, default: float | None = None) -> float:
    if value in (None, "") and default is not None:
        return default
    try:
        number = float(value or "")
    except ValueError:
        number = -1.0
    fractional = name == "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"
    if number < 0 or (not fractional and number != int(number)):
        raise SluiceError(f"{name}={value!r} is not a non-negative {'number' if fractional else 'integer'}")
    return number


def apply_http_defaults() -> None:
    """In this process: Sluice's HTTP budget for MLflow, where the user did not set their own."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
