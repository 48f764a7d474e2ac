"""Signed checkpoints: a log's (origin, size, root) as a C2SP signed note, signed with Ed25519.

A checkpoint (https://c2sp.org/tlog-checkpoint) is a note text of three lines: the log's
origin, its tree size in decimal, and its root hash in base64. A signed note
(https://c2sp.org/signed-note) is that text, a blank line, and one line per signature::

    example.com/consent-ledger
    8
    XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=

    — example.com/consent-ledger <base64(key ID || signature)>

Each signature is ``base64(key ID || Ed25519 signature of the text)``, where the key ID
is ``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``. Verifier keys are written as
``name+hexkeyid+base64(0x01 || public key)``, as Go's golang.org/x/mod/sumdb/note does,
so notes and keys interoperate with Go's tooling and with sum.golang.org.

Reading is strict and checks signatures before trusting the text: signatures by keys the
caller does not know are ignored, every signature by a known key must verify, and at
least one must.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consent_ledger.exceptions import ConsentLedgerError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ED25519 = 0x01  # the signed-note signature type of Ed25519
PUBLIC_KEY_SIZE = 32
KEY_ID_SIZE = 4
ROOT_SIZE = 32
MAX_SIGNATURES = 100  # as Go's note.Open; the spec asks for at least 16
MAX_TREE_SIZE = 2**64 - 1  # a uint64, as every other checkpoint reader
_CHECKPOINT_LINES = 3  # origin, size, root
_SIGNATURE_PREFIX = "\N{EM DASH} "
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(ConsentLedgerError):
    """A signed checkpoint, a signed note or a note key could not be read or trusted."""


class MalformedNoteError(CheckpointError):
    """The text is not a well-formed signed note."""


class UnverifiedNoteError(CheckpointError):
    """The note carries no signature by any of the known keys."""


class BadSignatureError(CheckpointError):
    """A signature by a known key does not verify: the note was altered or forged."""


class MalformedCheckpointError(CheckpointError):
    """The note's text is not a checkpoint: origin, decimal size, base64 root."""


class NoteKeyError(CheckpointError):
    """A key name or a verifier key is not valid."""


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: who (origin), how many leaves (size), and their Merkle root."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        """Refuse a checkpoint that could not be written as a note."""
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin):
            msg = f"checkpoint origin {self.origin!r} must be one non-empty line of text"
            raise MalformedCheckpointError(msg)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            msg = f"checkpoint tree size {self.size} is outside 0..2^64-1"
            raise MalformedCheckpointError(msg)
        if len(self.root) != ROOT_SIZE:
            msg = f"checkpoint root hash has {len(self.root)} bytes, not {ROOT_SIZE}"
            raise MalformedCheckpointError(msg)

    def body(self) -> str:
        """The note text: origin, size and base64 root hash, one per line.

        Returns:
            The three lines, each ending in a newline.
        """
        return f"{self.origin}\n{self.size}\n{_b64encode(self.root)}\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a checkpoint from a note text, strictly.

        The text must be exactly three lines: a non-empty origin, the size in decimal
        without leading zeros, and a base64 root of 32 bytes. Extension lines are
        refused: this ledger never writes them and will not drop signed text unread.

        Args:
            body: The note text (already verified, see :func:`verify_note`).

        Returns:
            The checkpoint.

        Raises:
            MalformedCheckpointError: If the text is not such a checkpoint.
        """
        if not body.endswith("\n"):
            msg = "malformed checkpoint: the text does not end with a newline"
            raise MalformedCheckpointError(msg)
        lines = body[:-1].split("\n")
        if len(lines) < _CHECKPOINT_LINES:
            msg = f"malformed checkpoint: {len(lines)} line(s), expected origin, size and root"
            raise MalformedCheckpointError(msg)
        if len(lines) > _CHECKPOINT_LINES:
            extra = len(lines) - _CHECKPOINT_LINES
            msg = f"malformed checkpoint: {extra} extension line(s), which are not supported"
            raise MalformedCheckpointError(msg)
        origin, size, root = lines
        if not origin:
            msg = "malformed checkpoint: the origin line is empty"
            raise MalformedCheckpointError(msg)
        if not _DECIMAL.fullmatch(size) or int(size) > MAX_TREE_SIZE:
            msg = (
                f"malformed checkpoint: tree size {size!r} is not a decimal number"
                " without leading zeros, at most 2^64-1"
            )
            raise MalformedCheckpointError(msg)
        root_hash = _b64decode(root)
        if root_hash is None or len(root_hash) != ROOT_SIZE:
            msg = f"malformed checkpoint: root hash {root!r} is not 32 bytes in base64"
            raise MalformedCheckpointError(msg)
        return cls(origin, int(size), root_hash)


@dataclass(frozen=True)
class VerifierKey:
    """A note verifier key: a key name and its raw 32-byte Ed25519 public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        """Refuse an invalid key name or a public key of the wrong size."""
        check_key_name(self.name)
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            msg = (
                f"the public key for {self.name!r} has {len(self.public_key)} bytes,"
                f" an Ed25519 key has {PUBLIC_KEY_SIZE}"
            )
            raise NoteKeyError(msg)

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> VerifierKey:
        """Name an Ed25519 public key.

        Args:
            name: The key name, as it will appear in signature lines.
            public_key: The public key.

        Returns:
            The verifier key.
        """
        return cls(name, public_key.public_bytes_raw())

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
        encoded = self.name.encode() + b"\n" + bytes([ED25519]) + self.public_key
        return hashlib.sha256(encoded).digest()[:KEY_ID_SIZE]

    @property
    def text(self) -> str:
        """The key as text: ``name+hexkeyid+base64(0x01 || public key)``."""
        key = _b64encode(bytes([ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def check_key_name(name: str) -> None:
    """Refuse a key name the signed-note format cannot carry.

    Args:
        name: A key name.

    Raises:
        NoteKeyError: If the name is empty or holds a space, a ``+`` or a control character.
    """
    if not name or "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        msg = f"key name {name!r} must be non-empty, without spaces or '+'"
        raise NoteKeyError(msg)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The signed-note key ID of a named Ed25519 public key.

    Args:
        name: The key name.
        public_key: The public key.

    Returns:
        ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``.
    """
    return VerifierKey.from_public_key(name, public_key).key_id


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """Write a named public key as a verifier key, as Go's ``note.NewEd25519VerifierKey``.

    Args:
        name: The key name.
        public_key: The public key.

    Returns:
        ``name+hexkeyid+base64(0x01 || public key)``.
    """
    return VerifierKey.from_public_key(name, public_key).text


def parse_verifier_key(text: str) -> VerifierKey:
    """Read a verifier key written as ``name+hexkeyid+base64(0x01 || public key)``.

    Args:
        text: The verifier key, for example one printed by :func:`verifier_key`.

    Returns:
        The key, after checking that its key ID matches its name and public key.

    Raises:
        NoteKeyError: If the text is not such a key, names another algorithm, or its
            key ID does not match.
    """
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    key = _b64decode(encoded)
    if not _HEX_KEY_ID.fullmatch(hex_id) or not key:
        msg = f"verifier key {text!r} is not name+hexkeyid+base64key"
        raise NoteKeyError(msg)
    if key[0] != ED25519:
        msg = f"verifier key {text!r} is of signature type {key[0]}, not Ed25519 (1)"
        raise NoteKeyError(msg)
    parsed = VerifierKey(name, key[1:])
    if parsed.key_id != bytes.fromhex(hex_id):
        msg = (
            f"verifier key {text!r} has key ID {hex_id},"
            f" but its name and key give {parsed.key_id.hex()}"
        )
        raise NoteKeyError(msg)
    return parsed


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign a note text with one Ed25519 key.

    Args:
        text: The note text, ending in a newline.
        name: The key name for the signature line.
        private_key: The signing key.

    Returns:
        The signed note: the text, a blank line and ``— name base64(keyid || signature)``.

    Raises:
        MalformedNoteError: If the text does not end in a newline or holds a control
            character.
        NoteKeyError: If the key name is not valid.
    """
    if not text.endswith("\n") or _CONTROL.search(text):
        msg = "a note text must end with a newline and hold no control characters"
        raise MalformedNoteError(msg)
    key = VerifierKey.from_public_key(name, private_key.public_key())
    signature = private_key.sign(text.encode())
    return f"{text}\n{_SIGNATURE_PREFIX}{name} {_b64encode(key.key_id + signature)}\n"


def sign(checkpoint: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign a checkpoint.

    Args:
        checkpoint: The tree head to sign.
        name: The key name; C2SP recommends the log's origin.
        private_key: The log's signing key.

    Returns:
        The signed note text, ready to publish.
    """
    return sign_note(checkpoint.body(), name, private_key)


def verify_note(text: str | bytes, verifier_keys: Iterable[VerifierKey]) -> str:
    """Parse a signed note and check its signatures; return its text once trusted.

    Signatures by keys not in ``verifier_keys`` (by name and key ID) are ignored, as the
    spec requires for key rotation and witness cosignatures.

    Args:
        text: The signed note. Pass bytes when reading a file, so that no newline
            translation changes what was signed.
        verifier_keys: The keys to trust.

    Returns:
        The note text (everything before the blank line, final newline included).

    Raises:
        MalformedNoteError: If the note is not well formed.
        NoteKeyError: If two different keys in ``verifier_keys`` share a name and key ID.
        BadSignatureError: If a signature by a known key does not verify.
        UnverifiedNoteError: If no signature is by a known key.
    """
    body, lines = _split_note(_decode_note(text))
    known = _index_keys(verifier_keys)
    message = body.encode()
    verified, seen = 0, []
    for name, signature in map(_parse_signature_line, lines):
        key = known.get((name, signature[:KEY_ID_SIZE]))
        label = f"{name}+{signature[:KEY_ID_SIZE].hex()}"
        seen.append(label)
        if key is None:
            continue
        if not key.verifies(message, signature[KEY_ID_SIZE:]):
            msg = f"invalid signature for key {label}: the note was altered or not signed by it"
            raise BadSignatureError(msg)
        verified += 1
    if not verified:
        msg = (
            f"note has no signature by a known key (signed by {', '.join(seen)});"
            " check the verifier keys"
        )
        raise UnverifiedNoteError(msg)
    return body


def _split_note(note: str) -> tuple[str, list[str]]:
    """The text of a note (final newline included) and its signature lines.

    Raises:
        MalformedNoteError: no blank line before the signatures, no newline after them,
            or more than :data:`MAX_SIGNATURES` of them.
    """
    split = note.rfind("\n\n")
    if split < 0:
        msg = "malformed note: no blank line between the text and the signatures"
        raise MalformedNoteError(msg)
    body, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        msg = "malformed note: the signature block does not end with a newline"
        raise MalformedNoteError(msg)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        msg = f"malformed note: {len(lines)} signatures, at most {MAX_SIGNATURES} are read"
        raise MalformedNoteError(msg)
    return body, lines


def open_note(text: str | bytes, verifier_keys: Iterable[VerifierKey]) -> Checkpoint:
    """Verify a signed checkpoint and read it.

    Args:
        text: The signed note (bytes when read from a file).
        verifier_keys: The keys to trust.

    Returns:
        The checkpoint, read only after a known key's signature verified.

    Raises:
        MalformedNoteError: If the note is not well formed.
        NoteKeyError: If two different keys in ``verifier_keys`` share a name and key ID.
        BadSignatureError: If a signature by a known key does not verify.
        UnverifiedNoteError: If no signature is by a known key.
        MalformedCheckpointError: If the signed text is not a checkpoint.
    """
    return Checkpoint.parse(verify_note(text, verifier_keys))


def _decode_note(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            msg = "malformed note: not valid UTF-8"
            raise MalformedNoteError(msg) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        msg = "malformed note: not valid UTF-8"
        raise MalformedNoteError(msg) from None
    if found := _CONTROL.search(text):
        msg = f"malformed note: control character {found.group()!r} at offset {found.start()}"
        raise MalformedNoteError(msg)
    return text


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        msg = f"malformed note: {line!r} is not a signature line ('— name signature')"
        raise MalformedNoteError(msg)
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    signature = _b64decode(encoded)
    if signature is None or len(signature) <= KEY_ID_SIZE:
        msg = f"malformed note: signature line {line!r} does not hold base64(keyid || signature)"
        raise MalformedNoteError(msg)
    try:
        check_key_name(name)
    except NoteKeyError as e:
        msg = f"malformed note: signature line {line!r}: {e}"
        raise MalformedNoteError(msg) from None
    return name, signature


def _index_keys(verifier_keys: Iterable[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for key in verifier_keys:
        other = known.setdefault((key.name, key.key_id), key)
        if other != key:
            msg = f"ambiguous key {key.name}+{key.key_id.hex()}: two verifier keys share it"
            raise NoteKeyError(msg)
    return known


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Decode standard, padded base64 in its one canonical spelling, or return None."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None
