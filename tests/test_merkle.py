"""RFC 6962 / 9162 Merkle trees: published vectors, and proofs that verify only when true."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent_ledger.evidence.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    TiledTree,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

# Test vectors copied from transparency-dev/merkle, proof/verify_test.go
# (https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go), the same
# ones certificate-transparency and Trillian use. Go's leaf numbers there are 1-based;
# the indexes here are 0-based.
LEAF_DATA = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [leaf_hash(data) for data in LEAF_DATA]
ROOTS = {  # tree size -> root hash
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION_VECTORS = [  # (index, size, proof)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY_VECTORS = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EXHAUSTIVE_SIZES = range(34)  # every shape up to 33 leaves: 2^k - 1, 2^k and 2^k + 1 to 32


def unhex(hashes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


def make_leaves(size: int, seed: bytes = b"") -> list[bytes]:
    """Distinct leaf hashes, so that no two positions can stand in for each other."""
    return [leaf_hash(seed + i.to_bytes(4, "big")) for i in range(size)]


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 words it: recursive, split at the largest 2^k < n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def flip(data: bytes, bit: int = 0) -> bytes:
    return bytes([data[0] ^ (1 << bit)]) + data[1:]


def trees(max_size: int = 300) -> st.SearchStrategy[list[bytes]]:
    """Trees of distinct random leaf hashes, from one leaf to ``max_size``."""
    return st.builds(make_leaves, st.integers(1, max_size), st.binary(max_size=8))


class TestPublishedVectors:
    """Our hashing reproduces transparency-dev/merkle's RFC 6962 vectors."""

    def test_empty_tree(self) -> None:
        """The empty tree's hash is SHA-256 of nothing."""
        assert root([]) == EMPTY_ROOT == bytes.fromhex(ROOTS[0])
        assert TreeBuilder().root() == EMPTY_ROOT

    def test_leaf_hash_prefixes_zero(self) -> None:
        """A one-leaf tree's root is SHA-256(0x00 || data)."""
        assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == bytes.fromhex(ROOTS[1])

    @pytest.mark.parametrize("size", range(9))
    def test_roots(self, size: int) -> None:
        """Roots of the first 0 to 8 reference leaves match the published ones."""
        builder = TreeBuilder()
        builder.extend(LEAVES[:size])

        assert root(LEAVES[:size]).hex() == ROOTS[size]
        assert builder.root().hex() == ROOTS[size]

    @pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
    def test_inclusion_proofs(self, index: int, size: int, proof: list[str]) -> None:
        """We generate the published audit paths, and they verify."""
        tree_root = bytes.fromhex(ROOTS[size])

        assert inclusion_proof(LEAVES[:size], index) == unhex(proof)
        assert verify_inclusion(LEAVES[index], index, size, unhex(proof), tree_root)

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
    def test_consistency_proofs(self, old: int, new: int, proof: list[str]) -> None:
        """We generate the published consistency proofs, and they verify."""
        old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])

        assert consistency_proof(LEAVES[:new], old) == unhex(proof)
        assert verify_consistency(old, new, old_root, new_root, unhex(proof))

    @pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
    def test_corrupted_inclusion_proofs_fail(self, index: int, size: int, proof: list[str]) -> None:
        """Every corruption of Go's corruptInclusionProof is rejected."""
        path, tree_root, leaf = unhex(proof), bytes.fromhex(ROOTS[size]), LEAVES[index]
        probes = [
            (index - 1, size, tree_root, leaf, path),
            (index + 1, size, tree_root, leaf, path),
            (index ^ 2, size, tree_root, leaf, path),
            (index, size * 2, tree_root, leaf, path),
            (index, size // 2, tree_root, leaf, path),
            (index, size, tree_root, b"WrongLeaf", path),
            (index, size, EMPTY_ROOT, leaf, path),
            (index, size, SOME_HASH, leaf, path),
            (index, size, tree_root, leaf, [*path, b""]),
            (index, size, tree_root, leaf, [*path, tree_root]),
            (index, size, tree_root, leaf, [b"", *path]),
            (index, size, tree_root, leaf, [tree_root, *path]),
            (index, size, tree_root, leaf, path[:-1]),
            (index, size, tree_root, leaf, [path[0], SOME_HASH, *path[1:]]),
        ]
        probes += [
            (index, size, tree_root, leaf, [*path[:i], flip(path[i], 3), *path[i + 1 :]])
            for i in range(len(path))
        ]
        for i, s, r, h, p in probes:
            assert not verify_inclusion(h, i, s, p, r), (i, s, r.hex(), h.hex(), p)

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS[1:])
    def test_corrupted_consistency_proofs_fail(self, old: int, new: int, proof: list[str]) -> None:
        """Every corruption of Go's corruptConsistencyProof is rejected."""
        path = unhex(proof)
        old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
        probes = [
            (old - 1, new, old_root, new_root, path),
            (old + 1, new, old_root, new_root, path),
            (old ^ 2, new, old_root, new_root, path),
            (old, new * 2, old_root, new_root, path),
            (old, new // 2, old_root, new_root, path),
            (old, new, b"WrongRoot", new_root, path),
            (old, new, old_root, b"WrongRoot", path),
            (old, new, new_root, old_root, path),
            (old, new, old_root, new_root, []),
            (old, new, old_root, new_root, [*path, b""]),
            (old, new, old_root, new_root, [*path, old_root]),
            (old, new, old_root, new_root, [*path, new_root]),
            (old, new, old_root, new_root, [b"", *path]),
            (old, new, old_root, new_root, [old_root, *path]),
            (old, new, old_root, new_root, [new_root, *path]),
            (old, new, old_root, new_root, [path[0], *path]),
            (old, new, old_root, new_root, path[:-1]),
        ]
        probes += [
            (old, new, old_root, new_root, [*path[:i], flip(path[i], 4), *path[i + 1 :]])
            for i in range(len(path))
        ]
        for o, n, r1, r2, p in probes:
            assert not verify_consistency(o, n, r1, r2, p), (o, n, r1.hex(), r2.hex(), p)


class TestRoot:
    """root() and TreeBuilder compute RFC 6962's Merkle Tree Hash."""

    @pytest.mark.parametrize("size", [*range(70), 127, 128, 129, 255, 256, 257, 1000])
    def test_root_matches_the_rfc_definition(self, size: int) -> None:
        """The iterative root equals the RFC's recursive definition."""
        leaves = make_leaves(size)

        assert root(leaves) == reference_root(leaves)

    def test_builder_matches_root_at_every_size(self) -> None:
        """Appending one leaf at a time gives root() of the prefix at every size."""
        leaves = make_leaves(600)
        builder = TreeBuilder()
        for size, leaf in enumerate(leaves, start=1):
            builder.append(leaf)

            assert builder.size == size
            assert builder.root() == root(leaves[:size])
            assert len(builder.frontier) == size.bit_count()

    @given(trees(max_size=2000))
    def test_builder_matches_root(self, leaves: list[bytes]) -> None:
        """The builder's root equals root() for random trees."""
        builder = TreeBuilder()
        builder.extend(leaves)

        assert builder.root() == root(leaves)

    @given(trees(max_size=300), st.data())
    def test_a_resumed_builder_grows_the_same_tree(
        self, leaves: list[bytes], data: st.DataObject
    ) -> None:
        """Resumed from its frontier at any size, a builder reaches the same root."""
        cut = data.draw(st.integers(0, len(leaves)))
        first = TreeBuilder()
        first.extend(leaves[:cut])

        resumed = TreeBuilder.resume(cut, first.frontier)
        resumed.extend(leaves[cut:])

        assert resumed.size == len(leaves)
        assert resumed.root() == root(leaves)

    @given(st.integers(0, 6), st.integers(0, 5), st.integers(0, 40))
    def test_a_perfect_subtree_appended_at_once_grows_the_same_tree(
        self, height: int, blocks: int, tail: int
    ) -> None:
        size = 1 << height
        leaves = make_leaves(size * blocks + tail)
        tree = TreeBuilder()
        for block in range(blocks):
            tree.append_subtree(root(leaves[block * size : (block + 1) * size]), size)
        tree.extend(leaves[size * blocks :])

        assert tree.size == len(leaves)
        assert tree.root() == root(leaves)

    def test_a_subtree_that_does_not_fit_is_refused(self) -> None:
        tree = TreeBuilder()
        tree.extend(LEAVES[:3])

        with pytest.raises(ValueError, match="do not form a perfect subtree"):
            tree.append_subtree(root(LEAVES[:2]), 2)
        with pytest.raises(ValueError, match="do not form a perfect subtree"):
            TreeBuilder().append_subtree(root(LEAVES[:3]), 3)

    def test_a_frontier_of_the_wrong_length_is_refused(self) -> None:
        """Three leaves have two perfect subtrees: one hash cannot resume them."""
        with pytest.raises(ValueError, match="2 hashes"):
            TreeBuilder.resume(3, LEAVES[:1])

    def test_root_accepts_any_sequence(self) -> None:
        """A tuple of leaves gives the same root as a list."""
        assert root(tuple(LEAVES)) == root(LEAVES)


class TestInclusion:
    """Inclusion proofs verify for the right leaf, position and root, and nothing else."""

    @pytest.mark.parametrize("size", EXHAUSTIVE_SIZES[1:])
    def test_every_proof_verifies_only_where_it_belongs(self, size: int) -> None:
        """Each leaf's proof verifies at its index and fails at every other index."""
        leaves = make_leaves(size)
        tree_root = root(leaves)
        for index in range(size):
            proof = inclusion_proof(leaves, index)

            assert verify_inclusion(leaves[index], index, size, proof, tree_root)
            assert not verify_inclusion(flip(leaves[index]), index, size, proof, tree_root)
            assert not verify_inclusion(leaves[index], index, size, proof, flip(tree_root))
            for other in range(size):
                if other != index:
                    assert not verify_inclusion(leaves[index], other, size, proof, tree_root)

    @given(trees(), st.data())
    def test_random_trees(self, leaves: list[bytes], data: st.DataObject) -> None:
        """A proof verifies, and fails for a changed leaf, index or root."""
        size = len(leaves)
        index = data.draw(st.integers(0, size - 1), label="index")
        other_tree = make_leaves(size, b"other")
        proof = inclusion_proof(leaves, index)
        tree_root = root(leaves)

        assert verify_inclusion(leaves[index], index, size, proof, tree_root)
        assert not verify_inclusion(flip(leaves[index], 7), index, size, proof, tree_root)
        assert not verify_inclusion(leaves[index], index, size, proof, root(other_tree))
        if size > 1:
            other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
            assert not verify_inclusion(leaves[index], other, size, proof, tree_root)

    @pytest.mark.parametrize("index", [-1, 5])
    def test_index_outside_the_tree_is_refused(self, index: int) -> None:
        """Asking for a leaf the tree does not have raises ValueError."""
        with pytest.raises(ValueError, match=f"leaf index {index} is outside a tree of 5"):
            inclusion_proof(LEAVES[:5], index)

    @pytest.mark.parametrize(
        ("index", "size", "proof", "tree_root"),
        [
            (0, 0, [], EMPTY_ROOT),
            (1, 1, [], LEAVES[0]),
            (-1, 1, [], LEAVES[0]),
            (0, 1, [], b"short"),
            (0, 1, [LEAVES[1]], LEAVES[0]),
            (0, 2, [b"short"], root(LEAVES[:2])),
        ],
    )
    def test_malformed_input_is_false(
        self, index: int, size: int, proof: list[bytes], tree_root: bytes
    ) -> None:
        """Sizes, indexes and hashes that cannot be right give False."""
        assert not verify_inclusion(LEAVES[0], index, size, proof, tree_root)

    @given(
        st.binary(max_size=40),
        st.integers(-3, 2**64),
        st.integers(-3, 2**64),
        st.lists(st.binary(max_size=40), max_size=70),
        st.binary(max_size=40),
    )
    def test_garbage_never_raises(
        self, leaf: bytes, index: int, size: int, proof: list[bytes], tree_root: bytes
    ) -> None:
        """Verification returns False on any input instead of raising."""
        assert verify_inclusion(leaf, index, size, proof, tree_root) in {True, False}


class TestConsistency:
    """Consistency proofs verify for every older prefix, and never for altered roots."""

    @pytest.mark.parametrize("new_size", EXHAUSTIVE_SIZES)
    def test_every_prefix_is_consistent(self, new_size: int) -> None:
        """Each old size's proof verifies, and fails if either root is altered."""
        leaves = make_leaves(new_size)
        new_root = root(leaves)
        for old_size in range(new_size + 1):
            old_root = root(leaves[:old_size])
            proof = consistency_proof(leaves, old_size)

            assert verify_consistency(old_size, new_size, old_root, new_root, proof)
            assert not verify_consistency(old_size, new_size, flip(old_root), new_root, proof)
            if old_size:  # an empty old tree proves nothing about the new root
                assert not verify_consistency(old_size, new_size, old_root, flip(new_root), proof)

    @given(trees(), st.data())
    def test_random_trees(self, leaves: list[bytes], data: st.DataObject) -> None:
        """A proof verifies, and fails for a rewritten prefix or an altered root."""
        new_size = len(leaves)
        old_size = data.draw(st.integers(1, new_size), label="old_size")
        rewritten = [*leaves[: old_size - 1], flip(leaves[old_size - 1])]
        old_root, new_root = root(leaves[:old_size]), root(leaves)
        proof = consistency_proof(leaves, old_size)

        assert verify_consistency(old_size, new_size, old_root, new_root, proof)
        assert not verify_consistency(old_size, new_size, root(rewritten), new_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, flip(new_root, 5), proof)
        assert not verify_consistency(new_size + 1, new_size, old_root, new_root, proof)

    def test_empty_old_tree_needs_the_empty_root(self) -> None:
        """Size 0 is consistent with anything, but only under the empty tree's root."""
        assert verify_consistency(0, 8, EMPTY_ROOT, bytes.fromhex(ROOTS[8]), [])
        assert not verify_consistency(0, 8, SOME_HASH, bytes.fromhex(ROOTS[8]), [])
        assert not verify_consistency(0, 8, EMPTY_ROOT, bytes.fromhex(ROOTS[8]), [SOME_HASH])

    def test_equal_sizes_need_equal_roots_and_no_proof(self) -> None:
        """A tree is consistent with itself only under one root and an empty proof."""
        tree_root = bytes.fromhex(ROOTS[5])

        assert verify_consistency(5, 5, tree_root, tree_root, [])
        assert not verify_consistency(5, 5, tree_root, SOME_HASH, [])
        assert not verify_consistency(5, 5, tree_root, tree_root, [tree_root])

    @pytest.mark.parametrize("old_size", [-1, 9])
    def test_old_size_outside_the_tree_is_refused(self, old_size: int) -> None:
        """Asking for a proof from a size the tree never had raises ValueError."""
        with pytest.raises(ValueError, match=f"old size {old_size} is outside 0..8"):
            consistency_proof(LEAVES, old_size)

    @given(
        st.integers(-3, 2**64),
        st.integers(-3, 2**64),
        st.binary(max_size=40),
        st.binary(max_size=40),
        st.lists(st.binary(max_size=40), max_size=70),
    )
    def test_garbage_never_raises(
        self, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
    ) -> None:
        """Verification returns False on any input instead of raising."""
        assert verify_consistency(old_size, new_size, old_root, new_root, proof) in {True, False}


class TestWholeTree:
    """MerkleTree gives the same roots and proofs as the list functions, only faster."""

    @given(trees(max_size=300), st.data())
    def test_its_proofs_are_the_list_functions_proofs(
        self, leaves: list[bytes], data: st.DataObject
    ) -> None:
        tree = MerkleTree(leaves)

        assert tree.size == len(leaves)
        assert tree.root() == root(leaves)
        old_size = data.draw(st.integers(0, len(leaves)))
        assert tree.consistency_proof(old_size) == consistency_proof(leaves, old_size)
        if leaves:
            index = data.draw(st.integers(0, len(leaves) - 1))
            assert tree.inclusion_proof(index) == inclusion_proof(leaves, index)

    @pytest.mark.parametrize("size", EXHAUSTIVE_SIZES[1:])
    def test_every_proof_of_every_small_tree_verifies(self, size: int) -> None:
        leaves = make_leaves(size)
        tree = MerkleTree(leaves)

        for index in range(size):
            proof = tree.inclusion_proof(index)
            assert verify_inclusion(leaves[index], index, size, proof, tree.root())

    def test_an_index_outside_the_tree_is_refused(self) -> None:
        with pytest.raises(ValueError, match="outside a tree of 3 leaves"):
            MerkleTree(LEAVES[:3]).inclusion_proof(3)


def tiled(leaves: list[bytes], tile: int, reads: list[int] | None = None) -> TiledTree:
    """The tree of ``leaves`` as a ledger keeps it: complete tiles' roots, leaves on demand."""

    def read_leaves(start: int, count: int) -> list[bytes]:
        if reads is not None:
            reads.append(count)
        return leaves[start : start + count]

    tiles = [root(leaves[i : i + tile]) for i in range(0, len(leaves) - tile + 1, tile)]
    return TiledTree(len(leaves), tiles, read_leaves, tile=tile)


class TestTiledTree:
    """A tree read through its tiles' roots gives the whole tree's roots and proofs."""

    @given(trees(max_size=300), st.sampled_from([1, 2, 4, 8, 16]), st.data())
    def test_its_root_and_proofs_are_the_whole_trees(
        self, leaves: list[bytes], tile: int, data: st.DataObject
    ) -> None:
        tree, whole = tiled(leaves, tile), MerkleTree(leaves)

        assert tree.root() == whole.root()
        old_size = data.draw(st.integers(0, len(leaves)))
        assert tree.consistency_proof(old_size) == whole.consistency_proof(old_size)
        if leaves:
            index = data.draw(st.integers(0, len(leaves) - 1))
            assert tree.leaf(index) == leaves[index]
            assert tree.inclusion_proof(index) == whole.inclusion_proof(index)

    @pytest.mark.parametrize("size", [1, 4, 5, 16, 17, 63, 64, 65])
    def test_every_proof_of_small_trees_in_tiles_of_four(self, size: int) -> None:
        leaves = make_leaves(size)
        tree, whole = tiled(leaves, 4), MerkleTree(leaves)

        for index in range(size):
            assert tree.inclusion_proof(index) == whole.inclusion_proof(index)
        for old_size in range(size + 1):
            assert tree.consistency_proof(old_size) == whole.consistency_proof(old_size)

    def test_a_proof_reads_one_tiles_leaves_not_the_log(self) -> None:
        leaves = [leaf_hash(b"%d" % n) for n in range(4096 + 3)]
        reads: list[int] = []
        tree = tiled(leaves, 256, reads)

        tree.inclusion_proof(1000)
        tree.inclusion_proof(1001)  # a neighbour: the same tiles, not read again

        assert sum(reads) <= 256 + 3  # the leaf's tile, and the partial last one

    def test_a_wrong_count_of_tile_roots_is_refused(self) -> None:
        with pytest.raises(ValueError, match="has 2 tiles of 4, not 1"):
            TiledTree(9, [EMPTY_ROOT], lambda *_: [], tile=4)
