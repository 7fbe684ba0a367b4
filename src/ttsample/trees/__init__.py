"""Trees the samplers walk on: one protocol, two implementations.

- ``Tree``: the complete ``b``-ary tree of depth ``n`` of the lab, nodes in heap order.
- ``TokenTrie``: a generation tree grown as samplers visit it (handles given
  out on first visit), for vocabularies and horizons far too large to enumerate.
"""

from .complete import Tree
from .protocol import TreeProtocol
from .trie import TokenTrie

__all__ = ["TokenTrie", "Tree", "TreeProtocol"]
