import numpy as np
import pytest

from ttsample import Target, Tree, bounded_tilt_target, random_target
from ttsample.errors import (
    InvalidMassError,
    OracleBoundError,
    TargetFileError,
    TreeShapeError,
    ZeroTotalMassError,
)
from ttsample.logspace import logsumexp


def test_subtree_masses_are_sums_of_children():
    masses = np.arange(27, dtype=float)
    t = Target.from_leaf_masses(masses, 3)
    assert t.tree == Tree(3, 3)
    assert np.isclose(np.exp(t.log_z), masses.sum())
    internal = np.arange(t.tree.leaf_start)
    kids = t.tree.children(internal)
    np.testing.assert_allclose(t.log_mass[internal], logsumexp(t.log_mass[kids], axis=1), atol=1e-12)
    np.testing.assert_allclose(t.leaf_probs(), masses / masses.sum())
    assert t.log_mass[0] == 0.0


def test_zero_mass_leaves_and_subtrees_are_minus_infinity():
    t = Target.from_leaf_masses(np.array([0.0, 0.0, 1.0, 3.0]), 2)
    assert np.isneginf(t.log_mass[1])  # left child of the root
    np.testing.assert_allclose(t.leaf_probs(), [0, 0, 0.25, 0.75])


def test_tree_numbering():
    tree = Tree(3, 2)
    assert tree.num_nodes == 13 and tree.leaf_start == 4
    np.testing.assert_array_equal(tree.children(np.array([0])), [[1, 2, 3]])
    np.testing.assert_array_equal(tree.parent(np.array([1, 3, 4, 12])), [0, 0, 1, 3])
    np.testing.assert_array_equal(tree.depth_of(np.arange(13)), [0] + [1] * 3 + [2] * 9)


@pytest.mark.parametrize(
    "masses, error, words",
    [
        (np.array([1.0, -1.0, 0.0, 2.0]), InvalidMassError, "negative"),
        (np.array([1.0, np.nan, 0.0, 2.0]), InvalidMassError, "NaN"),
        (np.array([1.0, np.inf, 0.0, 2.0]), InvalidMassError, "infinite"),
        (np.zeros(8), ZeroTotalMassError, "zero"),
        (np.ones(6), TreeShapeError, r"branching\*\*depth"),
        (np.ones(1), TreeShapeError, "depth >= 1"),
        (np.ones((2, 2)), TreeShapeError, "one-dimensional"),
        (np.array(["a", "b"]), InvalidMassError, "real numbers"),
    ],
)
def test_bad_masses_raise_clear_errors(masses, error, words):
    with pytest.raises(error, match=words):
        Target.from_leaf_masses(masses, 2)


@pytest.mark.parametrize("b, n", [(1, 3), (2, 0), (2, 40), (2.5, 3)])
def test_tree_shape_out_of_range(b, n):
    with pytest.raises(TreeShapeError):
        Tree(b, n)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_text("not an array")
    with pytest.raises(TargetFileError, match="cannot read"):
        Target.load(bad, 2)
    with pytest.raises(TargetFileError):
        Target.load(tmp_path / "missing.npy", 2)


def test_random_target_concentration_controls_peakedness():
    flat = random_target(10, 2, concentration=100.0, seed=0).leaf_probs()
    peaked = random_target(10, 2, concentration=0.05, seed=0).leaf_probs()
    entropy = lambda p: -np.sum(p[p > 0] * np.log(p[p > 0]))  # noqa: E731
    assert entropy(flat) > 0.99 * np.log(1024)
    assert entropy(peaked) < 0.5 * np.log(1024)
    np.testing.assert_array_equal(random_target(6, 3, 1.0, seed=4).log_mass, random_target(6, 3, 1.0, seed=4).log_mass)


def test_random_target_depth_22_fits():
    t = random_target(22, 2, concentration=0.3, seed=1)
    assert t.log_mass.size == 2**23 - 1 and np.isclose(t.leaf_probs().sum(), 1.0)


def test_overflowing_masses_are_named():
    tree = Tree(2, 2)
    with pytest.raises(InvalidMassError, match="overflows"):
        Target.from_leaf_log_masses(tree, np.array([0.0, np.inf, 1.0, 2.0]))


@pytest.mark.parametrize("b, rho", [(2, 1.5), (3, 2.0), (5, 1.1)])
def test_bounded_tilt_stays_within_rho_of_flat(b, rho):
    t = bounded_tilt_target(6, b, rho, seed=3)
    depth = t.tree.depth_of(np.arange(t.tree.num_nodes))
    log_ratio = t.log_mass + depth * np.log(b)
    assert np.all(np.abs(log_ratio) <= np.log(rho) + 1e-9)
    assert np.abs(log_ratio).max() > 0.9 * np.log(rho)  # the tilt uses the band
    with pytest.raises(OracleBoundError):
        bounded_tilt_target(4, 2, 0.5)
