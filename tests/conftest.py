import numpy as np
import pytest

from ttsample import Target, random_target

FALSE_ALARM = 1e-6  # every Monte-Carlo test rejects a correct sampler with probability <= 1e-6


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


def target_with_zeros(depth: int, branching: int, seed: int) -> Target:
    """A random target where about a third of the leaves, and whole subtrees, have mass zero."""
    rng = np.random.default_rng(seed)
    masses = rng.gamma(0.7, size=branching**depth)
    masses[rng.random(masses.size) < 0.35] = 0.0
    if branching**depth >= branching**2:
        masses[: branching ** (depth - 1)] = 0.0  # the whole first subtree of the root
    masses[-1] += 1.0  # never all zero
    return Target.from_leaf_masses(masses, branching)


@pytest.fixture
def small_target():
    return random_target(4, 2, concentration=0.5, seed=11)
