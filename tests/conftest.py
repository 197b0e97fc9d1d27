import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def broker():
    """A fresh Tansu broker on a free loopback port, stopped by PID after the test."""
    from ops.local_stack import TansuBroker

    with TansuBroker() as b:
        yield b


@pytest.fixture
def stack(tmp_path, broker):
    """Broker + `distillery worker` with its own DISTILLERY_HOME; the worker is started by the test."""
    from tests.support.stack import Stack

    s = Stack(tmp_path / "home", broker)
    yield s
    s.stop()
