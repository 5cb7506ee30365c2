"""What the checks expect, written by `dlworkshop verify` from the settings model."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from dlworkshop.deploy.verify import VARS_ENV


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    path = os.environ.get(VARS_ENV)
    if not path:
        pytest.fail(f"${VARS_ENV} is not set: run these checks through `dlworkshop verify`")
    with open(path) as handle:
        return json.load(handle)
