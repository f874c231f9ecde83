from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of the tests' own, on a free port."""
    folder: Path = tmp_path_factory.mktemp("redis")
    with redis_server(folder) as url:
        yield url
