"""scripts/gpu_check.py in its CPU form: every stage runs and the table reports it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_its_stages_in_cpu_form_and_prints_one_table(tmp_path):
    report_path = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device", "cpu", "--quick",
                           "--reps", "2", "--json-out", str(report_path), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "what", "device", "CUDA-only tests", "training step, baseline", "training step, proposed",
        "separation of a 10 s song", "BSS Eval v4 of that song (CPU)"]
    report = json.loads(report_path.read_text())
    # Without CUDA the CUDA-only tests skip, and nothing fails.
    assert report["cuda_tests"]["status"] == "ok" and report["cuda_tests"]["failed"] == 0
    assert report["cuda_tests"]["skipped"] >= 5
    assert report["training_step"]["status"] == "ok"
    assert 0 < report["training_step"]["baseline"] < report["training_step"]["proposed"]
    assert report["separation"]["status"] == "ok" and report["separation"]["separation_s"] > 0

