"The `soft-grounding` console script, run as a user runs it."
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "soft-grounding"


def run(*args):
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def installed():
    if not SCRIPT.exists(): pytest.fail(f"console script not installed at {SCRIPT}: run `pip install -e .[dev]`")


def test_help_lists_subcommands():
    res = run("--help")
    assert res.returncode == 0, res.stderr
    for name in ("info", "experiment"): assert f"  {name}" in res.stdout


@pytest.mark.parametrize("args, message", [
    ((), "usage: soft-grounding"),
    (("experimnet",), "unknown subcommand 'experimnet'"),
    (("info", "--no-such-flag"), "unrecognized arguments: --no-such-flag"),
    (("experiment", "--seed", "x"), "invalid int value: 'x'"),
])
def test_bad_input_prints_usage_and_fails(args, message):
    res = run(*args)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert message in res.stderr
    assert "usage:" in res.stderr


def test_subcommand_help():
    res = run("experiment", "--help")
    assert res.returncode == 0
    assert "--out" in res.stdout and "output directory" in res.stdout


def test_info_is_json():
    res = run("info", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["device"] == "cpu" and info["torch"]


def test_experiment_writes_under_out(tmp_path):
    out = tmp_path / "run"
    res = run("experiment", "--out", str(out), "--preset", "smoke", "--tune", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and len({r["run_id"] for r in rows}) == 9  # 2 methods x 2 sizes x 2 seeds, and the zero-shot row
    assert [r["run_id"] for r in rows if r["method"] == "zero_shot"] == ["A/zero_shot/n0/s0"]
    assert (out / "report" / "report.md").read_text().startswith("# soft_grounding sweep report")
    assert (out / "report" / "curves.png").stat().st_size > 1000
    assert "A/dip_ce" in res.stdout  # the final table
    # another configuration in the same directory is refused, naming the difference
    res = run("experiment", "--out", str(out), "--preset", "smoke", "--seeds", "1", "--device", "cpu")
    assert res.returncode == 2 and "differs in ['seeds']" in res.stderr
    res = run("report", "--out", str(out))
    assert res.returncode == 0 and "report.md" in res.stdout
