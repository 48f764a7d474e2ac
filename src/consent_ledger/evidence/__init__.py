"""Tamper evidence: the Merkle tree, signed checkpoints, verification, bundles."""
