"""Fixtures shared by the pytest files."""

import pytest


@pytest.fixture
def one_thread():
    """Tiny tensors: extra threads only add synchronisation (and stall on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    # torch.export's deprecation noise from tests that call torch-mlir's import directly
    # (pconv_mlir.compile silences it itself; test_first_hour checks that).
    config.addinivalue_line("filterwarnings", r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning")
