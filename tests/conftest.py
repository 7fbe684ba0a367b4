import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The test models are tiny: they gain nothing from threads, and on a busy 2-core machine spinning threads cost many times over."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

