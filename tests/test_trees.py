"""The tree protocol: the complete tree's heap numbering and the token trie agree on what a node is."""

import numpy as np
import pytest

from ttsample import make_oracle, random_target
from ttsample.errors import OracleBoundError, TreeShapeError
from ttsample.oracles import CountedOracle, Ledger, with_error
from ttsample.oracles.protocol import Oracle
from ttsample.trees import TokenTrie, Tree


def test_complete_tree_protocol_matches_heap_numbering():
    tree = Tree(3, 4)
    every = np.arange(tree.num_nodes)
    inner = every[~tree.is_leaf(every)]
    kids = tree.children(inner)
    assert np.array_equal(tree.parent(kids), np.repeat(inner[:, None], 3, axis=1))
    assert np.array_equal(tree.action(kids), np.broadcast_to(np.arange(3), kids.shape))
    assert np.array_equal(tree.child(inner, np.full(inner.size, 2)), kids[:, 2])
    assert np.array_equal(tree.is_leaf(every), tree.depth_of(every) == 4)
    paths = tree.path(tree.leaf_nodes())
    assert paths == sorted(paths) and len(set(paths)) == 81  # leaves in lexicographic order of their paths
    assert np.array_equal(tree.leaf_index(tree.leaf_nodes()), np.arange(81))


def test_trie_hands_out_stable_handles_and_ends_branches_at_eos():
    trie = TokenTrie(4, 3, eos=1)
    a = trie.child(np.array([0, 0, 0]), np.array([2, 2, 3]))
    assert a[0] == a[1] != a[2]  # the same child asked twice in one call gets one handle
    assert np.array_equal(trie.child(np.array([0]), np.array([2])), a[:1])  # and keeps it
    ended = trie.child(a[:1], np.array([1]))
    assert trie.is_leaf(ended).all() and not trie.is_leaf(a).any()
    with pytest.raises(TreeShapeError, match="no children"):
        trie.child(ended, np.array([0]))
    deep = trie.child(trie.child(a[:1], np.array([0])), np.array([3]))
    assert trie.is_leaf(deep).all() and trie.depth_of(deep)[0] == 3  # the horizon
    assert trie.path(deep) == [(2, 0, 3)]
    with pytest.raises(TreeShapeError):
        trie.parent(np.array([trie.num_nodes]))


def test_trie_keys_depend_on_the_path_not_on_the_visit_order():
    first, second = TokenTrie(5, 4, eos=0), TokenTrie(5, 4, eos=0)
    first.grow_all(10_000)
    leaf = second.child(second.child(second.child(np.array([0]), [4]), [3]), [0])  # visited first here
    same = first.child(first.child(first.child(np.array([0]), [4]), [3]), [0])
    assert leaf[0] != same[0]  # different handles ...
    assert first.node_key(same)[0] == second.node_key(leaf)[0]  # ... same key
    keys = first.node_key(np.arange(first.num_nodes))
    assert np.unique(keys).size == keys.size  # no collisions on this tree


def test_full_trie_has_the_expected_size_and_refuses_too_many_nodes():
    trie = TokenTrie(3, 3, eos=2)
    trie.grow_all(1000)  # 1 + 3 + 2*3 + 4*3 nodes; leaves: 1 + 2 + 12
    assert trie.num_nodes == 22 and trie.leaf_nodes().size == 15
    with pytest.raises(TreeShapeError, match="too many"):
        TokenTrie(10, 6).grow_all(10_000)
    with pytest.raises(TreeShapeError, match="proposal"):
        TokenTrie(50_257, 4).children(np.array([0]))


class TrieOracle(Oracle):
    """A lab target seen through a trie: each trie node answers as the complete-tree node on the same path."""

    name = "trie-view"
    normalised = True

    def __init__(self, target, eos=None):
        self.complete = target.tree
        self.tree = TokenTrie(target.tree.branching, target.tree.depth, eos=eos)
        self.log_mass = target.log_mass
        self.log_rho = 0.0

    def heap_id(self, ids):
        out = []
        for path in self.tree.path(ids):
            v = 0
            for a in path:
                v = int(self.complete.child(np.array([v]), np.array([a]))[0])
            out.append(v)
        return np.array(out, dtype=np.int64).reshape(np.shape(ids))

    def log_weight(self, ids):
        return self.log_mass[self.heap_id(np.asarray(ids))]


def test_error_models_wrap_a_trie_oracle_and_stay_within_rho():
    """A rho-noisy oracle on a tree never enumerated: leaves exact, internal nodes within rho, answers fixed per path."""
    target = random_target(4, 3, seed=2)
    base = TrieOracle(target)
    noisy = with_error(base, "random", 2.0, seed=5)
    rng = np.random.default_rng(0)
    nodes = np.zeros(1, dtype=np.int64)
    for _ in range(4):
        nodes = np.concatenate([nodes, base.tree.child(nodes[-20:], rng.integers(3, size=min(20, nodes.size)))])
    gap = noisy.log_weight(nodes) - base.log_weight(nodes)
    leaf = base.tree.is_leaf(nodes)
    assert np.all(gap[leaf] == 0) and np.all(np.abs(gap[~leaf]) <= np.log(2.0) + 1e-12) and np.any(gap[~leaf] != 0)
    assert noisy.log_rho == pytest.approx(np.log(2.0))
    twin = with_error(base, "random", 2.0, seed=6)  # another seed: other noise (the check can tell them apart)
    assert not np.allclose(twin.log_weight(nodes[~leaf]), noisy.log_weight(nodes[~leaf]))
    counted = CountedOracle(noisy, Ledger())
    grown = base.tree.child(np.zeros(1, dtype=np.int64), [0])
    counted.log_weight(grown)
    assert counted.ledger.queries_distinct == 1 and counted.cached(grown).all()



@pytest.mark.parametrize("kind", ["delayed", "flat"])
def test_measured_bound_oracles_refuse_a_growing_trie_and_measure_a_grown_one(kind):
    """Their bound is a maximum over every internal node: over a partly grown trie it would be no bound.

    Here the visited nodes are the root (exact under both models) and its first
    child, so the old maximum over visited nodes said far less than the truth.
    Once grown, the trie's bound is the one measured on the complete tree.
    """
    target = random_target(4, 3, seed=2)
    base = TrieOracle(target)
    assert not base.tree.enumerated  # the root alone
    base.tree.child(np.zeros(1, dtype=np.int64), [0])
    assert not base.tree.enumerated
    with pytest.raises(OracleBoundError, match="grow_all"):
        with_error(base, kind)
    base.tree.grow_all(10_000)
    assert base.tree.enumerated and Tree(3, 4).enumerated
    measured = with_error(base, kind).log_rho
    assert measured == pytest.approx(make_oracle(target, kind).log_rho, rel=1e-12) and measured > 0

def test_counting_cache_grows_with_the_trie():
    target = random_target(3, 2, seed=1)
    base = TrieOracle(target)
    counted = CountedOracle(base, Ledger())
    assert counted.log_weight(np.zeros(1, dtype=np.int64))[0] == 0.0
    for _ in range(3):
        base.tree.grow_all(100)
    every = np.arange(base.tree.num_nodes)
    np.testing.assert_array_equal(counted.log_weight(every), base.log_weight(every))
    np.testing.assert_array_equal(counted.log_weight(every), base.log_weight(every))
    assert counted.ledger.queries_distinct == every.size and counted.ledger.queries_total == 2 * every.size + 1
    assert np.allclose(np.sort(np.exp(counted.log_weight(base.tree.leaf_nodes()))), np.sort(target.leaf_probs()))
