"""Group things that turn out to be one: a union-find over any hashable keys."""

from __future__ import annotations

from collections.abc import Hashable


class UnionFind:
    """Disjoint sets with path compression; a key is its own set until joined."""

    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x: Hashable) -> Hashable:
        """Return the representative of the set holding x."""
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: Hashable, b: Hashable) -> None:
        """Join the sets of a and b; a's representative stays the representative."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
