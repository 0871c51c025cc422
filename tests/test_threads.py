"""core.threads: OpenMP's wait policy is chosen per command, before torch is imported."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


def test_idle_threads_sleep_when_asked_before_torch_and_the_users_choice_stands():
    code = ("from core.threads import let_idle_torch_threads_sleep as f; import os; "
            "print(f(), os.environ.get('OMP_WAIT_POLICY'))")
    assert run_python(code) == "True PASSIVE"
    assert run_python(code, OMP_WAIT_POLICY="ACTIVE") == "False ACTIVE"
    late = ("import torch; from core.threads import let_idle_torch_threads_sleep as f; import os; "
            "print(f(), os.environ.get('OMP_WAIT_POLICY'))")
    assert run_python(late) == "False None"  # too late: OpenMP has read its settings


def test_product_commands_let_idle_threads_sleep_and_trainers_keep_them_spinning():
    code = ("import main, os, sys; main.main(sys.argv[1:]); print(os.environ.get('OMP_WAIT_POLICY'))")
    doctor = subprocess.run([sys.executable, "-c", code, "doctor", "--json"], cwd=ROOT, capture_output=True,
                            text=True, env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
    assert doctor.stdout.strip().splitlines()[-1] == "PASSIVE"
    trainer = subprocess.run([sys.executable, "-c", code, "train-expert", "--data", "/nonexistent"], cwd=ROOT,
                             capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
    assert trainer.stdout.strip().splitlines()[-1] == "None"
