"""RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256: roots, inclusion and consistency proofs.

The tree is the Certificate Transparency one (RFC 9162 §2.1): a leaf hashes as
``SHA-256(0x00 || data)``, an interior node as ``SHA-256(0x01 || left || right)``, the
empty tree as ``SHA-256()``, and a tree of ``n > 1`` leaves splits at ``k``, the largest
power of two below ``n``. The prefixes keep a leaf from passing for a node.

Everything here is pure: functions take leaf *hashes* (see :func:`leaf_hash`), not data,
and nothing touches a database. Generators raise ``ValueError`` on a bad index or size;
verifiers never raise and return ``False`` for any proof they cannot accept.

It stays one module, a little over 500 lines, on purpose: it is the whole RFC 9162 tree in
one pure file that an auditor can read, or copy beside a bundle's verifier, on its own; and
proofs are made and verified by walking the same splits in mirrored order, which is
easiest to check when both sit side by side.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data.

    Args:
        data: The leaf's bytes (for the ledger, one canonical event envelope).

    Returns:
        ``SHA-256(0x00 || data)``.
    """
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node from its two children.

    Args:
        left: The left child's hash.
        right: The right child's hash.

    Returns:
        ``SHA-256(0x01 || left || right)``.
    """
    return _sha256(_NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash (MTH) of a list of leaf hashes.

    Works bottom-up, level by level: pairs are hashed left to right and an unpaired
    last node moves up unchanged. That builds the same tree as the RFC's split at the
    largest power of two below ``n`` (the left part is always a perfect tree), without
    recursion or slicing, in O(n) time.

    Args:
        leaf_hashes: The leaves' hashes, in log order.

    Returns:
        The root hash; ``SHA-256()`` for an empty tree, the leaf hash itself for one leaf.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    sha256, prefix = _sha256, _NODE_PREFIX
    while len(level) > 1:
        pairs = iter(level)
        upper = [
            sha256(prefix + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if len(level) % 2:
            upper.append(level[-1])
        level = upper
    return level[0]


class TreeBuilder:
    """A Merkle tree grown one leaf at a time, in O(log n) memory.

    It keeps only the roots of the perfect subtrees that make up the tree so far (one
    per set bit of the size, largest first), the "compact range" of the whole tree.
    Appending merges equal-sized subtrees like a binary counter; the root folds the
    stack from the right. A streaming verifier can feed it a million events and ask for
    the root at each checkpoint's size without holding the leaves.
    """

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def resume(cls, size: int, frontier: Sequence[bytes]) -> TreeBuilder:
        """A tree of ``size`` leaves, from the :attr:`frontier` it had at that size.

        Raises:
            ValueError: the frontier does not have one hash per set bit of ``size``.
        """
        if size < 0 or len(frontier) != size.bit_count() or not all(map(_is_hash, frontier)):
            msg = f"a frontier of a tree of {size} leaves has {size.bit_count()} hashes"
            raise ValueError(msg)
        tree = cls()
        tree._size = size
        tree._stack = list(frontier)
        return tree

    @property
    def frontier(self) -> list[bytes]:
        """The roots of the perfect subtrees the tree is made of, largest first.

        With the size, all :meth:`resume` needs to go on growing the tree.
        """
        return list(self._stack)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf.

        Args:
            leaf_hash: The new leaf's hash (see :func:`leaf_hash`).
        """
        node, size = leaf_hash, self._size
        while size & 1:
            node = node_hash(self._stack.pop(), node)
            size >>= 1
        self._stack.append(node)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add several leaves, in order.

        Args:
            leaf_hashes: The new leaves' hashes.
        """
        stack, size, sha256, prefix = self._stack, self._size, _sha256, _NODE_PREFIX
        for leaf in leaf_hashes:  # append(), inlined: this loop runs once per event verified
            node, carry = leaf, size
            while carry & 1:
                node = sha256(prefix + stack.pop() + node).digest()
                carry >>= 1
            stack.append(node)
            size += 1
        self._size = size

    def append_subtree(self, subtree_root: bytes, size: int) -> None:
        """Add ``size`` leaves at once, by the root of the perfect subtree they form.

        Raises:
            ValueError: ``size`` is not a power of two, or the tree's size is not a
                multiple of it (the leaves would not form one subtree of this tree).
        """
        if size < 1 or size & (size - 1) or self._size % size:
            msg = f"{size} leaves after {self._size} do not form a perfect subtree"
            raise ValueError(msg)
        node, carry = subtree_root, self._size // size
        while carry & 1:
            node = node_hash(self._stack.pop(), node)
            carry >>= 1
        self._stack.append(node)
        self._size += size

    def root(self) -> bytes:
        """The Merkle Tree Hash of the leaves appended so far.

        Returns:
            The same value as :func:`root` over the same leaves.
        """
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            result = node_hash(left, result)
        return result


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Build the audit path for one leaf (RFC 9162 §2.1.3.1, PATH(m, D[n])).

    Args:
        leaf_hashes: The tree's leaf hashes, in log order.
        index: The 0-based position of the leaf to prove.

    Returns:
        The sibling hashes from the leaf up to the root.

    Raises:
        ValueError: If ``index`` is not a position in the tree.
    """
    return _inclusion_path(len(leaf_hashes), index, lambda low, high: root(leaf_hashes[low:high]))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Prove that the tree's first ``old_size`` leaves are unchanged (RFC 9162 §2.1.4.1).

    Args:
        leaf_hashes: The newer tree's leaf hashes, in log order.
        old_size: The size of the older tree, at most ``len(leaf_hashes)``.

    Returns:
        The SUBPROOF(m, D[n], true) hashes; empty when ``old_size`` is 0 or equals the
        new size, where the proof is the roots themselves.

    Raises:
        ValueError: If ``old_size`` is negative or larger than the tree.
    """
    return _consistency_path(
        len(leaf_hashes), old_size, lambda low, high: root(leaf_hashes[low:high])
    )


class ProvingTree(ABC):
    """A tree that can name the root of any subtree RFC 9162's proofs name, so it proves."""

    size: int

    @abstractmethod
    def root(self) -> bytes:
        """The tree's root hash."""

    @abstractmethod
    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""

    @abstractmethod
    def _subtree(self, low: int, high: int) -> bytes:
        """The root of leaves [low, high): a perfect subtree, or the tree's last one."""

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index``, as :func:`inclusion_proof` builds it.

        Raises:
            ValueError: If ``index`` is not a position in the tree.
        """
        return _inclusion_path(self.size, index, self._subtree)

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """The proof that this tree extends its first ``old_size`` leaves.

        Raises:
            ValueError: If ``old_size`` is negative or larger than the tree.
        """
        return _consistency_path(self.size, old_size, self._subtree)


class MerkleTree(ProvingTree):
    """A whole tree kept level by level, for many proofs: each costs O(log n) lookups.

    Level 0 holds the leaf hashes; each level above pairs the one below, an unpaired last
    node moving up unchanged (the tree :func:`root` builds). A node at level ``k`` and
    index ``j`` is the root of leaves ``[j * 2**k, min((j + 1) * 2**k, size))``: exactly the
    subtrees RFC 9162's proofs name. Levels are kept as contiguous bytes (32 per node).
    """

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        """Hash every level above ``leaf_hashes``."""
        level = b"".join(leaf_hashes)
        self.size = len(level) // HASH_SIZE
        self._levels = [level]
        sha256, prefix, pair = _sha256, _NODE_PREFIX, 2 * HASH_SIZE
        while len(level) > HASH_SIZE:
            paired = len(level) - len(level) % pair
            upper = [sha256(prefix + level[i : i + pair]).digest() for i in range(0, paired, pair)]
            if paired < len(level):
                upper.append(level[paired:])
            level = b"".join(upper)
            self._levels.append(level)

    def root(self) -> bytes:
        """The tree's root hash."""
        return self._levels[-1] if self.size else EMPTY_ROOT

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        return self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE]

    def _subtree(self, low: int, high: int) -> bytes:
        """The root of leaves [low, high): a perfect subtree, or the tree's last one."""
        level = (high - low - 1).bit_length()
        start = (low >> level) * HASH_SIZE
        return self._levels[level][start : start + HASH_SIZE]


TILE_HEIGHT = 8
TILE = 1 << TILE_HEIGHT
_TILES_KEPT = 8  # tiles of leaves a TiledTree keeps read (a few KB each)
"""Leaves per tile: a tile is the perfect subtree of ``TILE`` leaves at an aligned place."""


class TiledTree(ProvingTree):
    """A tree read through the roots of its complete tiles, for a few proofs in a large log.

    :class:`MerkleTree` hashes every level from every leaf: for one person's proofs in a
    log of millions, that is millions of hashes. Here the ``size // tile`` complete tiles
    are given by their roots (kept when the leaves were added), the leaves of a tile are
    read only when a proof reaches into it (``read_leaves(start, count)``), and every
    subtree a proof names is built from tile roots above the tiles and from one tile's
    leaves inside it: O(size / tile) hashes for the whole tree, O(tile) per proof.
    """

    def __init__(
        self,
        size: int,
        tile_roots: Sequence[bytes],
        read_leaves: Callable[[int, int], Sequence[bytes]],
        *,
        tile: int = TILE,
    ) -> None:
        """The tree of ``size`` leaves whose complete tiles have ``tile_roots``.

        Raises:
            ValueError: the count of tile roots is not ``size // tile``, or ``tile`` is
                not a power of two.
        """
        if tile < 1 or tile & (tile - 1) or len(tile_roots) != size // tile:
            msg = (
                f"a tree of {size} leaves has {size // tile} tiles of {tile}, not {len(tile_roots)}"
            )
            raise ValueError(msg)
        self.size = size
        self._tile = tile
        self._tiles = MerkleTree(tile_roots)
        self._read = read_leaves
        self._cached: dict[int, Sequence[bytes]] = {}  # the tiles read lately

    def root(self) -> bytes:
        """The tree's root hash."""
        return self._subtree(0, self.size) if self.size else EMPTY_ROOT

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``.

        Raises:
            ValueError: If ``index`` is not a position in the tree.
        """
        if not 0 <= index < self.size:
            msg = f"leaf index {index} is outside a tree of {self.size} leaves"
            raise ValueError(msg)
        return self._leaves_of(index // self._tile)[index % self._tile]

    def _subtree(self, low: int, high: int) -> bytes:
        """The root of leaves [low, high): a perfect subtree, or the tree's last one."""
        tile = self._tile
        if low % tile == 0 and high % tile == 0:  # whole tiles: a node of the tiles' tree
            return self._tiles._subtree(low // tile, high // tile)  # noqa: SLF001 (same module)
        first = low // tile
        if first == (high - 1) // tile:  # inside one tile
            leaves = self._leaves_of(first)
            return root(leaves[low - first * tile : high - first * tile])
        middle = low + _split(high - low)
        return node_hash(self._subtree(low, middle), self._subtree(middle, high))

    def _leaves_of(self, index: int) -> Sequence[bytes]:
        """The leaf hashes of tile ``index`` (the last may be partial), kept for a while.

        A proof reads its leaf's tile and, when the tree ends in a partial tile, that one:
        the few read last are kept, so proofs of one person's events read each tile once.
        """
        leaves = self._cached.get(index)
        if leaves is None:
            start = index * self._tile
            count = min(self._tile, self.size - start)
            leaves = self._read(start, count)
            if len(leaves) != count:
                msg = f"{len(leaves)} leaves were read for tile {index}, not {count}"
                raise ValueError(msg)
            if len(self._cached) >= _TILES_KEPT:
                self._cached.pop(next(iter(self._cached)))  # the oldest
            self._cached[index] = leaves
        return leaves


def _inclusion_path(size: int, index: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    if not 0 <= index < size:
        msg = f"leaf index {index} is outside a tree of {size} leaves"
        raise ValueError(msg)
    path: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        middle = low + _split(high - low)
        if index < middle:
            path.append(subtree(middle, high))
            high = middle
        else:
            path.append(subtree(low, middle))
            low = middle
    path.reverse()
    return path


def _consistency_path(
    size: int, old_size: int, subtree: Callable[[int, int], bytes]
) -> list[bytes]:
    if not 0 <= old_size <= size:
        msg = f"old size {old_size} is outside 0..{size}, the newer tree's size"
        raise ValueError(msg)
    if old_size in {0, size}:
        return []
    proof: list[bytes] = []
    low, high, complete = 0, size, True
    while old_size != high - low:
        middle = low + _split(high - low)
        if old_size <= middle - low:
            proof.append(subtree(middle, high))
            high = middle
        else:
            proof.append(subtree(low, middle))
            old_size -= middle - low
            low, complete = middle, False
    if not complete:
        proof.append(subtree(low, high))
    proof.reverse()
    return proof


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an audit path (RFC 9162 §2.1.3.2).

    Args:
        leaf_hash: The hash of the leaf said to be in the tree.
        index: Its 0-based position.
        size: The tree's size.
        proof: The audit path, leaf to root.
        root: The tree's root hash at ``size``.

    Returns:
        True only if the path leads from the leaf at ``index`` to ``root``; False for a
        wrong hash, a position outside the tree, or a path of the wrong length.
    """
    if not (0 <= index < size and _is_hash(leaf_hash) and _is_hash(root)):
        return False
    if not all(_is_hash(each) for each in proof):
        return False
    node, last, computed = index, size - 1, leaf_hash
    for sibling in proof:
        if last == 0:
            return False
        if node & 1 or node == last:
            computed = node_hash(sibling, computed)
            while not node & 1 and node:
                node >>= 1
                last >>= 1
        else:
            computed = node_hash(computed, sibling)
        node >>= 1
        last >>= 1
    return last == 0 and computed == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that a newer tree extends an older one (RFC 9162 §2.1.4.2).

    Args:
        old_size: The older tree's size.
        new_size: The newer tree's size.
        old_root: The older tree's root hash.
        new_root: The newer tree's root hash.
        proof: The consistency proof from :func:`consistency_proof`.

    Returns:
        True only if the proof shows the newer tree starts with the older one. For equal
        sizes the roots must be equal and the proof empty; an empty older tree must have
        the empty root and an empty proof (it binds nothing about the newer root). False
        for any malformed input.
    """
    if not (0 <= old_size <= new_size and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if not all(_is_hash(each) for each in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    return _roots_from_consistency(old_size, new_size, old_root, proof) == (old_root, new_root)


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes] | None:
    """Steps 2-6 of RFC 9162 §2.1.4.2: both roots the proof implies, or None."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a perfect old tree is its own first node
        path.insert(0, old_root)
    if not path:
        return None
    node, last = old_size - 1, new_size - 1
    while node & 1:
        node >>= 1
        last >>= 1
    old_computed = new_computed = path[0]
    for sibling in path[1:]:
        if last == 0:
            return None
        if node & 1 or node == last:
            old_computed = node_hash(sibling, old_computed)
            new_computed = node_hash(sibling, new_computed)
            while not node & 1 and node:
                node >>= 1
                last >>= 1
        else:
            new_computed = node_hash(new_computed, sibling)
        node >>= 1
        last >>= 1
    return (old_computed, new_computed) if last == 0 else None
