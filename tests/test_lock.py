"""The locked environment: requirements/lock.txt agrees with pyproject.toml, `make venv`
and the container install from it, and every run records how its environment compares."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnflow.lockfile import (
    LOCK_PATH,
    LockFileError,
    check_lock,
    compare_with_lock,
    container_image,
    file_sha256,
    locked_requirements,
    read_lock,
    requirements_digest,
    stamp_lock,
)
from nnflow.runtime import environment

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / LOCK_PATH
INSTALL_SCRIPT = ROOT / "requirements" / "install-locked.sh"
RECIPE = ROOT / "container" / "nnflow.def"


@pytest.fixture
def project_copy(tmp_path):
    """pyproject.toml and the lock, copied: the tests edit the copies, never the originals."""
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    shutil.copy(LOCK, tmp_path / "lock.txt")
    return tmp_path / "pyproject.toml", tmp_path / "lock.txt"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


# ----------------------------------------------------------------------------- lock vs pyproject


def test_the_lock_agrees_with_pyproject():
    assert check_lock(PYPROJECT, LOCK) == []


OTHER = "compiled from other requirements"


def requirement(pyproject: Path, group: str, index: int = 0) -> tuple[str, str]:
    """(text, name) of a requirement of the pyproject copy: the edits below work on whatever
    pyproject.toml requires today, not on a hard-coded version."""
    text = locked_requirements(pyproject)[group][index]
    return text, re.match(r"[A-Za-z0-9._-]+", text).group(0)


def still_satisfied(pyproject: Path) -> tuple[str, str, list[str]]:
    # the pins still satisfy it: only the recorded digest notices the edit
    text, _ = requirement(pyproject, "workflow")
    return text, f"{text},!=0.0.1", [OTHER]


def not_satisfied(pyproject: Path) -> tuple[str, str, list[str]]:
    text, name = requirement(pyproject, "dependencies")
    return text, f"{name}>=9999", [OTHER, f"'{name}>=9999' (dependencies) but"]


def added(pyproject: Path) -> tuple[str, str, list[str]]:
    text, _ = requirement(pyproject, "test", -1)
    expected = [OTHER, "'nnflow-lock-probe>=1' (test) is not pinned"]
    return text, f'{text}",\n    "nnflow-lock-probe>=1', expected


@pytest.mark.parametrize("change", [still_satisfied, not_satisfied, added])
def test_an_edited_requirement_fails_the_check(project_copy, change):
    pyproject, lock = project_copy
    assert check_lock(pyproject, lock) == []
    old, new, expected = change(pyproject)
    edit(pyproject, f'"{old}"', f'"{new}"')
    problems = check_lock(pyproject, lock)
    assert len(problems) == len(expected), problems
    for problem, needle in zip(problems, expected, strict=True):
        assert needle in problem
    assert "make lock" in problems[0] and str(lock) in problems[0]


def test_make_lock_stamps_the_digest_and_the_check_passes_again(project_copy):
    pyproject, lock = project_copy
    old, new, _ = still_satisfied(pyproject)
    edit(pyproject, f'"{old}"', f'"{new}"')
    assert stamp_lock(lock, pyproject) == requirements_digest(pyproject)
    assert check_lock(pyproject, lock) == []
    assert read_lock(lock).pins == read_lock(LOCK).pins
    assert lock.read_text().count("# nnflow-requirements-sha256:") == 1


def test_reformatting_the_requirements_keeps_the_digest(project_copy):
    pyproject, _ = project_copy
    before = requirements_digest(pyproject)
    first, _ = requirement(pyproject, "workflow", 0)
    second, _ = requirement(pyproject, "workflow", 1)
    spaced = re.sub(r"([<>=!~]=?|,)", r" \1 ", second)
    edit(pyproject, f'"{first}",\n    "{second}",', f'"{spaced}",\n    "{first}",')
    assert requirements_digest(pyproject) == before


def test_a_lock_without_a_stamp_fails_the_check(project_copy):
    pyproject, lock = project_copy
    lines = lock.read_text().splitlines(True)
    lock.write_text("".join(line for line in lines if "nnflow-requirements" not in line))
    (problem,) = check_lock(pyproject, lock)
    assert "has no '# nnflow-requirements-sha256: ...' line" in problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-e .\n", "line 1: expected 'name==version"),
        ("numpy>=1.26 \\\n    --hash=sha256:00\n", "line 1: expected 'name==version"),
        ("# header\nnumpy==2.4.6\n", "line 2: numpy==2.4.6 has no --hash"),
        ("# only comments\n", "no pinned requirement found"),
    ],
)
def test_read_lock_refuses_anything_but_hashed_pins(tmp_path, text, message):
    path = tmp_path / "lock.txt"
    path.write_text(text)
    with pytest.raises(LockFileError, match=re.escape(message)) as info:
        read_lock(path)
    assert str(path) in str(info.value)


def test_read_lock_parses_markers_and_the_stamp():
    lock = read_lock(LOCK)
    assert lock.sha256 == file_sha256(LOCK)
    assert lock.requirements_sha256 == requirements_digest(PYPROJECT)
    (numpy,) = lock.pins["numpy"]
    assert numpy.marker is None and numpy.version
    (colorama,) = lock.pins["colorama"]
    assert colorama.marker == "sys_platform == 'win32'"


# ----------------------------------------------------------------------------- installed vs lock


def fake_lock(tmp_path, numpy_version="2.4.6"):
    path = tmp_path / "lock.txt"
    path.write_text(
        f"numpy=={numpy_version} \\\n    --hash=sha256:{'0' * 64}\n"
        f"PyYAML==6.0.4 --hash=sha256:{'1' * 64}\n"
        f"colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:{'2' * 64}\n"
    )
    return read_lock(path)


def test_compare_with_lock_names_missing_and_other_versions_and_extras(tmp_path):
    lock = fake_lock(tmp_path)
    exact = {"numpy": ("numpy", "2.4.6"), "pyyaml": ("PyYAML", "6.0.4"), "pip": ("pip", "26.0"),
             "nnflow": ("nnflow", "0.1.0")}
    assert compare_with_lock(lock, exact) == {"matches": True, "differences": [], "unlocked": []}
    drifted = {"numpy": ("numpy", "2.5.5"), "torch": ("torch", "2.13.0+cpu")}
    assert compare_with_lock(lock, drifted) == {
        "matches": False,
        "differences": ["numpy 2.5.5 (lock: 2.4.6)", "PyYAML missing (lock: 6.0.4)"],
        "unlocked": ["torch==2.13.0+cpu"],
    }


def test_every_run_records_the_lock_digest_and_every_installed_package():
    env = environment()
    lock = env["lock"]
    assert lock["sha256"] == file_sha256(LOCK) and Path(lock["file"]) == LOCK
    assert set(lock) == {"file", "sha256", "matches", "differences", "unlocked"}
    installed = env["installed"]
    assert f"numpy=={np.__version__}" in installed
    assert len(installed) > 50 and len(installed) == len(set(installed))
    names = [line.split("==")[0].lower().replace("_", "-") for line in installed]
    assert names == sorted(names)


def test_an_environment_that_is_not_the_lock_is_recorded_as_such(tmp_path, monkeypatch):
    fake_lock(tmp_path, numpy_version="1.0.0")
    monkeypatch.setenv("NNFLOW_LOCK", str(tmp_path / "lock.txt"))
    lock = environment()["lock"]
    assert lock["file"] == str(tmp_path / "lock.txt") and lock["sha256"] == file_sha256(tmp_path / "lock.txt")
    assert lock["matches"] is False
    assert f"numpy {np.__version__} (lock: 1.0.0)" in lock["differences"]


def test_an_unreadable_lock_is_recorded_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("NNFLOW_LOCK", str(tmp_path / "missing.txt"))
    lock = environment()["lock"]
    assert lock["matches"] is False and lock["sha256"] is None
    assert "cannot read the lock file" in lock["differences"][0]


# ----------------------------------------------------------------------------- who installs it


def test_make_venv_installs_the_lock_by_default():
    out = subprocess.run(
        ["make", "-n", "-B", "venv", "VENV=/nonexistent/venv"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert f"sh requirements/install-locked.sh /nonexistent/venv/bin/python {LOCK_PATH}" in out
    assert "pip install --quiet --no-deps -e ." in out
    assert "[workflow,test]" not in out
    unlocked = subprocess.run(
        ["make", "-n", "-B", "venv", "VENV=/nonexistent/venv", "LOCK="],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert "pip install --quiet -e '.[workflow,test]'" in unlocked and "install-locked" not in unlocked


def recipe_sections(text: str) -> dict[str, list[str]]:
    """The header (key: value lines) and each %section of an Apptainer definition file."""
    sections: dict[str, list[str]] = {"header": []}
    current = "header"
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("%"):
            current = stripped[1:].split()[0]
            sections[current] = []
        else:
            sections[current].append(stripped)
    return sections


def test_the_container_recipe_installs_exactly_the_lock_with_the_same_script():
    sections = recipe_sections(RECIPE.read_text())
    header = dict(line.split(":", 1) for line in sections["header"])
    header = {key.strip(): value.strip() for key, value in header.items()}
    # Debian bookworm's python3 is 3.11, the version the lock is compiled for
    assert header["Bootstrap"] == "debootstrap" and header["OSVersion"] == "bookworm"
    assert {"python3", "python3-venv"} <= set(header["Include"].split())
    files = dict(line.split() for line in sections["files"])
    lock_in_image = files[str(LOCK_PATH)]
    script_in_image = files["requirements/install-locked.sh"]
    installs = [line for line in sections["post"] if "pip install" in line or "install-locked" in line]
    python = "/opt/nnflow/venv/bin/python"
    assert installs == [
        f"{python} -m pip install --quiet --upgrade pip",
        f"sh {script_in_image} {python} {lock_in_image}",
    ]
    environment_lines = sections["environment"]
    assert f"export NNFLOW_LOCK={lock_in_image}" in environment_lines
    assert f"export PATH={Path(python).parent}:$PATH" in environment_lines


def test_the_snakefile_names_the_image_of_the_current_lock():
    snakefile = (ROOT / "Snakefile").read_text()
    assert "container: str(container_image(workflow.basedir))" in snakefile
    image = container_image(ROOT)
    assert image == ROOT / "container" / f"nnflow-{file_sha256(LOCK)[:12]}.sif"


def build_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel (one module), enough for pip to install and verify."""
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in [*files, f"{dist_info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return wheel


@pytest.mark.slow
def test_the_install_script_installs_the_pins_and_refuses_a_file_whose_hash_differs(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = build_wheel(wheels, "nnflowlockprobe", "1.2.3")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
           "PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": str(tmp_path)}

    def install(lock_text: str) -> subprocess.CompletedProcess:
        lock = tmp_path / "lock.txt"
        lock.write_text(lock_text)
        return subprocess.run(["sh", str(INSTALL_SCRIPT), str(python), str(lock)], env=env,
                              capture_output=True, text=True, timeout=300)

    wrong = install(f"nnflowlockprobe==1.2.3 --hash=sha256:{'0' * 64}\n")
    assert wrong.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in wrong.stderr
    right = install(f"nnflowlockprobe==1.2.3 --hash=sha256:{digest}\n")
    assert right.returncode == 0, right.stderr
    sha = hashlib.sha256((tmp_path / "lock.txt").read_bytes()).hexdigest()
    assert f"installing the locked environment from {tmp_path / 'lock.txt'} (sha256 {sha})" in right.stdout
    probe = "import importlib.metadata as m; print(m.version('nnflowlockprobe'))"
    version = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "1.2.3"
