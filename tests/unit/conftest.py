"""Fixtures shared by the unit tests."""

import pytest

from tests.unit.test_kit_place import sshd  # noqa: F401 - a real loopback sshd, also for the doctor's host checks


@pytest.fixture(autouse=True)
def _run_folders_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fleet driver's run folders (fleet/runfolder.py) go to a temporary folder, never results/."""
    monkeypatch.setenv("K8SF_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
