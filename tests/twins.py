"""Samplers broken on purpose, shared by the exact-law and Monte-Carlo tests: each check must catch them."""

import numpy as np

from ttsample.samplers.lifted import LiftedWalk
from ttsample.samplers.walk import SinclairJerrumWalk


class ParentWeightWalk(SinclairJerrumWalk):
    """Broken on purpose: moves up with the parent's weight instead of the node's own."""

    def kernel(self, oracle, ids):
        candidates, weights = super().kernel(oracle, ids)
        inner = ~self.tree.is_leaf(ids) & (ids != 0)
        weights[0, inner] *= np.exp(oracle.log_weight(self.tree.parent(ids[inner])) - oracle.log_weight(ids[inner]))
        return candidates, weights


class EagerFlipLiftedWalk(LiftedWalk):
    """Broken on purpose: a chain going up never flips back down."""

    def kernel(self, oracle, states):
        candidates, weights = super().kernel(oracle, states)
        going_up = ((states & 1) == 1) & ((states >> 1) < self.tree.leaf_start)
        weights[0, going_up] = 0.0
        weights[0, going_up & ((states >> 1) == 0)] = 1.0  # the root must still turn around
        return candidates, weights
