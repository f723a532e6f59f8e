"""benchmarks/gpu_check.py runs only on a GPU machine, rarely; ``--dry-run`` keeps its code paths
(every backend's timing and skip, the table, the JSON) working on the CPU, under Triton's
interpreter with tiny shapes, in every ``make test``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_end_to_end_on_the_cpu_as_a_dry_run(tmp_path):
    output = tmp_path / "gpu.json"
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", str(output), "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["dry_run"] is True
    summary = result["summary"]
    assert summary["shapes_timed"] > 0 and summary["shapes_failed"] == 0
    assert summary["all_timed_shapes_agree_with_torch"] is True
    assert result["timings"] and result["environment"]["torch"]
    assert "TFLOP/s" in done.stdout or "tflops" in done.stdout.lower()
