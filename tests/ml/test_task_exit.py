"""Task processes skip the interpreter's teardown after success, and only after success.

Real KFP local runner, real task processes: a two-task pipeline whose components arm the fast
exit with `ml.components.task_exit.install()` (as every Sluice step does when it starts) and
leave marker files from exit handlers registered before and after arming it. (No
`from __future__ import annotations`: KFP reads the real annotation objects.)
"""

import pytest
from kfp import dsl, local

pytestmark = pytest.mark.slow


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def succeed(marker_dir: str) -> str:
    import atexit
    from pathlib import Path

    def touch(name):
        return lambda: Path(marker_dir, name).write_text("ran")

    atexit.register(touch("registered-before-install"))
    from ml.components.task_exit import install

    install()
    atexit.register(touch("registered-after-install"))
    return "handed over"


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def consume(value: str, marker_dir: str):
    from pathlib import Path

    Path(marker_dir, "consumed").write_text(value)


@dsl.component(base_image="python:3.11-slim", install_kfp_package=False)
def fail(marker_dir: str):
    from ml.components.task_exit import install

    install()
    raise ValueError("boom")


@dsl.pipeline(name="fast-exit")
def passing(marker_dir: str):
    made = succeed(marker_dir=marker_dir)
    consume(value=made.output, marker_dir=marker_dir)


@dsl.pipeline(name="failing-exit")
def failing(marker_dir: str):
    fail(marker_dir=marker_dir)


@pytest.fixture
def runner(tmp_path):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
        enable_caching=False,
    )


def test_a_successful_task_skips_teardown_but_keeps_later_handlers_and_its_outputs(runner, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    passing(marker_dir=str(markers))
    # The output reached the next task: the executor had written it before the process ended.
    assert (markers / "consumed").read_text() == "handed over"
    # Handlers registered after arming it (MLflow's, temp-dir cleanups) still ran ...
    assert (markers / "registered-after-install").is_file()
    # ... while teardown, and whatever was registered before it, was skipped by os._exit(0).
    assert not (markers / "registered-before-install").exists()


def test_a_failing_task_still_fails(runner, tmp_path):
    with pytest.raises(RuntimeError, match="FAILURE"):
        failing(marker_dir=str(tmp_path))
