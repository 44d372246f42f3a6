"""The source distribution as shipped: it holds the tests, the notebooks and their cassettes,
and a smoke test runs from it (its own copy of the package, not this checkout's)."""
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_sdist_holds_the_tests_and_notebooks_and_runs_them(tmp_path):
    built = subprocess.run(                  # as pip would: pyproject's build requirements
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [name] = [p.name for p in tmp_path.glob("*.tar.gz")]
    with tarfile.open(tmp_path / name) as sdist:
        sdist.extractall(tmp_path, filter="data")
    unpacked = tmp_path / name.removesuffix(".tar.gz")
    shipped = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.split())
    wanted = {p for p in tracked if p.split("/")[0] in
              ("tests", "notebooks", "benchmarks", "cfai_magic", "jupyter-config")}
    assert wanted - shipped == set()
    assert not [p for p in shipped if "__pycache__" in p]
    here = subprocess.run([sys.executable, "-c", "import cfai_magic; print(cfai_magic.__file__)"],
                          cwd=unpacked, capture_output=True, text=True)
    assert here.stdout.strip().startswith(str(unpacked))         # the sdist's own copy
    smoke = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_safe.py",
         "tests/test_cassette.py", "notebooks/01-quickstart.ipynb"],
        cwd=unpacked, capture_output=True, text=True, timeout=600)
    assert smoke.returncode == 0, smoke.stdout[-3000:]
    assert " passed" in smoke.stdout and "failed" not in smoke.stdout
