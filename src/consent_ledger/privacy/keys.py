"""Key material: the master key, the keys derived from it, and per-subject data keys.

The master key lives outside the database (a key file beside an SQLite ledger, or an
environment variable / file for PostgreSQL). From it, HKDF derives five keys:

* the *key-wrapping key*, which wraps each subject's data key before it is stored;
* the *lookup pepper*, which turns an identifier into a keyed HMAC for lookups, so the
  database never holds an identifier or a plain hash of one;
* the *check key*, which proves a master key belongs to a ledger without revealing it;
* the *signing seed*, from which each ledger's Ed25519 checkpoint key is made;
* the *signal key*, which hashes the ids of ingested webhook items (they hold numbers).

Each subject's personal data is sealed (AES-256-GCM) with that subject's own data key.
Destroying the data key forgets the person (crypto-shredding) and changes no stored event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from consent_ledger.exceptions import KeyMaterialError, MissingKeyError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from uuid import UUID

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.values import Sealed

# cryptography (AES-GCM, Ed25519) and the Sealed model (pydantic) are imported where they
# are used: opening a ledger and finding a person (all a send-time check does) need HMACs
# only, and a process that checks per message should not load what it never calls.

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_FORMAT = "consent-ledger-key/1"
IDENTIFIER_CONTEXT = b"|1|identifier"  # sealed identifiers sit at version 1
_PAD_TO = 64  # seal plaintexts in 64-byte buckets, so ciphertext length hides value length


@dataclass(frozen=True)
class MasterKey:
    """The ledger's root secret (32 random bytes)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        """Refuse anything but a 32-byte key."""
        if len(self.secret) != KEY_BYTES:
            msg = f"a master key has {KEY_BYTES} bytes, this one has {len(self.secret)}"
            raise KeyMaterialError(msg)

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random master key."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Read a master key from its base64 text form.

        Raises:
            KeyMaterialError: the text is not base64 of 32 bytes.
        """
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except binascii.Error:
            msg = "the master key is not valid base64"
            raise KeyMaterialError(msg) from None
        return cls(secret)

    def to_text(self) -> str:
        """The base64 text form of the key, as key files and CONSENT_LEDGER_KEY hold it."""
        return base64.b64encode(self.secret).decode()


def _derive(master: MasterKey, purpose: str) -> bytes:
    """HKDF-SHA256 (RFC 5869) of the master key for one purpose, without salt, 32 bytes.

    Two HMACs from the standard library, the same bytes as cryptography's ``HKDF`` (a test
    compares them): opening a ledger, and a send-time check, need not load cryptography.
    """
    info = f"consent-ledger/v1/{purpose}".encode()
    prk = hmac.digest(bytes(KEY_BYTES), master.secret, "sha256")  # extract; no salt: zeros
    return hmac.digest(prk, info + b"\x01", "sha256")  # expand: one block is all 32 bytes


class KeyRing:
    """The keys derived from one master key, and the operations that need them."""

    def __init__(self, master: MasterKey) -> None:
        """Derive the wrapping key, lookup pepper and check key from ``master``."""
        self._wrapping_key = _derive(master, "key-wrapping")
        self._lookup = hmac.new(_derive(master, "identifier-lookup"), digestmod=hashlib.sha256)
        self._check = _derive(master, "key-check")
        self._signing = _derive(master, "checkpoint-signing")
        self._signals = hmac.new(_derive(master, "signal-key"), digestmod=hashlib.sha256)

    @cached_property
    def _wrapping(self) -> AESGCM:
        # Made when a data key is first wrapped or unwrapped: a check never does either.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        return AESGCM(self._wrapping_key)

    def key_check(self, ledger_id: str) -> str:
        """A value stored in the ledger that tells whether a key is the right one."""
        return hmac.new(self._check, ledger_id.encode(), hashlib.sha256).hexdigest()

    def checkpoint_key(self, ledger_id: str) -> Ed25519PrivateKey:
        """The Ed25519 key that signs this ledger's checkpoints (one per ledger)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
            Ed25519PrivateKey,
        )

        seed = hmac.new(self._signing, ledger_id.encode(), hashlib.sha256).digest()
        return Ed25519PrivateKey.from_private_bytes(seed)

    def signal_key(self, key: str) -> bytes:
        """The keyed HMAC under which an ingested signal (a webhook item) is remembered.

        Signal keys (a WhatsApp message id encodes the sender's number) are personal
        data: the database keeps only this hash, which nobody can reverse without the
        master key.
        """
        signal = self._signals.copy()
        signal.update(key.encode())
        return signal.digest()

    def lookup(self, business_id: str, identifier: Identifier) -> bytes:
        """The keyed HMAC under which a business finds a person by an identifier."""
        lookup = self._lookup.copy()  # keyed once: copying beats keying again per call
        lookup.update(f"{business_id}\x1f{identifier.kind}\x1f{identifier.value}".encode())
        return lookup.digest()

    def new_data_key(self, subject_id: UUID) -> tuple[DataKey, bytes]:
        """A fresh data key for a subject, with its wrapped form to store."""
        secret = os.urandom(KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + self._wrapping.encrypt(nonce, secret, subject_id.bytes)
        return DataKey(subject_id, secret), wrapped

    def open_identifiers(
        self,
        subject_ids: Sequence[str],
        wrapped_keys: Sequence[bytes],
        nonces: Sequence[bytes],
        ciphertexts: Sequence[bytes],
    ) -> list[str]:
        """Open a page of subjects' sealed identifiers at once, for audiences of many people.

        Column by column: each subject's id (``UUID.hex``), wrapped data key, and its
        sealed identifier's nonce and ciphertext. The same as :meth:`unwrap` then
        :meth:`DataKey.open` of each identifier (version 1), without the objects between
        and with the work done in ``map`` (no Python frame per person).

        Raises:
            KeyMaterialError: a key or an identifier does not open (the first is named).
        """
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 (see the imports)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        subjects = list(map(bytes.fromhex, subject_ids))
        try:
            secrets = list(
                map(
                    self._wrapping.decrypt,
                    [w[:NONCE_BYTES] for w in wrapped_keys],
                    [w[NONCE_BYTES:] for w in wrapped_keys],
                    subjects,
                )
            )
            contexts = [subject + IDENTIFIER_CONTEXT for subject in subjects]
            plaintexts = list(
                map(AESGCM.decrypt, map(AESGCM, secrets), nonces, ciphertexts, contexts)
            )
        except InvalidTag:  # one does not open: open them one by one, to name it
            return list(map(self._open_identifier, subject_ids, wrapped_keys, nonces, ciphertexts))
        return list(map(orjson.loads, plaintexts))

    def _open_identifier(self, subject_id: str, wrapped: bytes, nonce: bytes, ct: bytes) -> str:
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 (see the imports)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        subject = bytes.fromhex(subject_id)
        try:
            secret = self._wrapping.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], subject)
            plaintext = AESGCM(secret).decrypt(nonce, ct, subject + IDENTIFIER_CONTEXT)
        except InvalidTag:
            msg = f"the identifier of subject {subject_id} does not open with this master key"
            raise KeyMaterialError(msg) from None
        value: str = orjson.loads(plaintext)
        return value

    def unwrap(self, subject_id: UUID, wrapped: bytes) -> DataKey:
        """Recover a subject's data key from its stored, wrapped form.

        Raises:
            KeyMaterialError: the wrapped key was not made by this key ring for this subject.
        """
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 (see the imports)

        try:
            secret = self._wrapping.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], subject_id.bytes
            )
        except InvalidTag:
            msg = f"the data key of subject {subject_id} does not open with this master key"
            raise KeyMaterialError(msg) from None
        return DataKey(subject_id, secret)


class DataKey:
    """One subject's data key: seals and opens that subject's personal data."""

    def __init__(self, subject_id: UUID, secret: bytes) -> None:
        """Hold ``secret`` as the data key of ``subject_id``."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        self.subject_id = subject_id
        self._aead = AESGCM(secret)

    def seal(self, value: Any, *, version: int, purpose: str) -> Sealed:
        """Encrypt a JSON-able value for the event at ``version`` of this subject.

        The subject id, event version and purpose are bound as associated data, so a
        sealed value cannot be moved to another event or field without detection.
        """
        from consent_ledger.model.values import Sealed  # noqa: PLC0415 (see the imports)

        plaintext = orjson.dumps(value)
        plaintext += b" " * (-len(plaintext) % _PAD_TO)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext, self._context(version, purpose))
        return Sealed(nonce=_b64(nonce), ct=_b64(ciphertext))

    def open(self, sealed: Sealed, *, version: int, purpose: str) -> Any:
        """Decrypt a value sealed by :meth:`seal` for the same version and purpose.

        Raises:
            KeyMaterialError: the value was altered, moved, or sealed with another key.
        """
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 (see the imports)

        nonce = base64.b64decode(sealed.nonce)
        ciphertext = base64.b64decode(sealed.ct)
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, self._context(version, purpose))
        except InvalidTag:
            msg = (
                f"sealed {purpose} of subject {self.subject_id} at version {version} "
                "does not open: altered, moved, or sealed with another key"
            )
            raise KeyMaterialError(msg) from None
        return orjson.loads(plaintext)

    def _context(self, version: int, purpose: str) -> bytes:
        return self.subject_id.bytes + f"|{version}|{purpose}".encode()


class DataKeyCache:
    """The most recently used data keys, so reading a subject again skips the unwrapping."""

    def __init__(self, size: int = 4096) -> None:
        """Keep at most ``size`` keys."""
        self._size = size
        self._keys: OrderedDict[UUID, DataKey] = OrderedDict()

    def get(self, subject_id: UUID) -> DataKey | None:
        """The cached key of a subject, if any."""
        data_key = self._keys.get(subject_id)
        if data_key is not None:
            self._keys.move_to_end(subject_id)
        return data_key

    def put(self, data_key: DataKey) -> None:
        """Remember a key, forgetting the least recently used one if full."""
        self._keys[data_key.subject_id] = data_key
        self._keys.move_to_end(data_key.subject_id)
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_key_file(path: Path, ledger_id: str, master: MasterKey) -> None:
    """Create a key file readable by its owner only (mode 0600); never overwrite one.

    Raises:
        KeyMaterialError: the file exists already or cannot be created.
    """
    content = orjson.dumps(
        {"format": KEY_FILE_FORMAT, "ledger_id": ledger_id, "master_key": master.to_text()},
        option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"a key file already exists at {path}; refusing to overwrite it"
        raise KeyMaterialError(msg) from None
    except OSError as e:
        msg = f"cannot create key file {path}: {e.strerror}"
        raise KeyMaterialError(msg) from None
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def read_key_file(path: Path) -> tuple[str | None, MasterKey]:
    """Read a key file: the id of the ledger it belongs to, and the master key.

    Raises:
        MissingKeyError: there is no file at ``path``.
        KeyMaterialError: the file is readable by others, or is not a key file.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        msg = f"no key file at {path}"
        raise MissingKeyError(msg) from None
    except OSError as e:  # a name too long, a folder in the way
        msg = f"cannot read key file {path}: {e.strerror or e}"
        raise KeyMaterialError(msg) from None
    if not stat.S_ISREG(mode):
        msg = f"{path} is not a consent-ledger key file (not a file)"
        raise KeyMaterialError(msg)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        msg = (
            f"key file {path} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
            f"restrict it with: chmod 600 {path}"
        )
        raise KeyMaterialError(msg)
    try:
        content = path.read_bytes()
    except OSError as e:
        msg = f"cannot read key file {path}: {e.strerror or e}"
        raise KeyMaterialError(msg) from None
    try:
        data = orjson.loads(content)
        if data.get("format") != KEY_FILE_FORMAT:
            raise TypeError  # noqa: TRY301 (one error for every kind of malformed file)
        return data.get("ledger_id"), MasterKey.from_text(data["master_key"])
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
        msg = f"{path} is not a consent-ledger key file"
        raise KeyMaterialError(msg) from None
