"""Test-session settings shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Wall-clock deadlines flake on a loaded 2-core machine; CI explores a fixed set of examples so
# that a red run is reproducible, while local runs keep exploring new ones.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True, scope="session")
def _work_in_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """trial's mktemp() makes paths under the working directory: keep them out of the tree."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("trial"))
    yield
    os.chdir(before)
