"""Signed checkpoints: C2SP notes that Go's note package and sum.golang.org agree with."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from consent_ledger.evidence.checkpoint import (
    BadSignatureError,
    Checkpoint,
    CheckpointError,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteKeyError,
    UnverifiedNoteError,
    VerifierKey,
    key_id,
    open_note,
    parse_verifier_key,
    sign,
    sign_note,
    verifier_key,
    verify_note,
)
from consent_ledger.exceptions import ConsentLedgerError

ORIGIN = "example.com/consent-ledger"
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
CHECKPOINT = Checkpoint(ORIGIN, 8, ROOT_8)
BODY = "example.com/consent-ledger\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"


def private_key(label: str) -> Ed25519PrivateKey:
    """A fixed test key, derived from a memorable label."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


LOG_KEY = private_key("log key")
OTHER_KEY = private_key("another key")
LOG_VKEY = VerifierKey.from_public_key(ORIGIN, LOG_KEY.public_key())
OTHER_VKEY = VerifierKey.from_public_key("witness.example/w1", OTHER_KEY.public_key())

# golang.org/x/mod, sumdb/note/note_test.go (TestNewSigner, TestSign, TestOpen):
# https://github.com/golang/mod/blob/master/sumdb/note/note_test.go
GO_PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
    "fqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnW"
    "Lox33WWd1RvMc+QQ=\n"
)

# A real checkpoint of the Go checksum database, "Retrieved from https://sum.golang.org/latest,
# 2024-09-23", as quoted in sigsum/sigsum-go, pkg/checkpoint/checkpoint_test.go
# (TestGoSumDBCheckpoint): https://github.com/sigsum/sigsum-go/blob/main/pkg/checkpoint/checkpoint_test.go
# Its key is the one Go ships, in golang/go src/cmd/go/internal/modfetch/key.go.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "30055305\n"
    "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n"
    "\n"
    "— sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlW"
    "FJJYle3EJlDCrQ+y3A8=\n"
)


def go_peter_key() -> Ed25519PrivateKey:
    """Peter's private key from Go's signer key text: base64(0x01 || 32-byte seed)."""
    seed = base64.b64decode(GO_PETER_SKEY.split("+", 4)[4])
    assert seed[0] == 1
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def short_key() -> str:
    """A verifier key of 31 bytes, with the key ID its name and bytes give."""
    key = b"\x01" + bytes(31)
    hex_id = hashlib.sha256(b"PeterNeumann\n" + key).digest()[:4].hex()
    return f"PeterNeumann+{hex_id}+{base64.b64encode(key).decode()}"


def signature_line(note: str) -> str:
    """The last signature line of a note, newline included."""
    return note.rsplit("\n", 2)[1] + "\n"


def replace_signature(note: str, new_bytes: bytes) -> str:
    body, _, line = note.rstrip("\n").rpartition("\n")
    name = line.split(" ")[1]
    return f"{body}\n— {name} {base64.b64encode(new_bytes).decode()}\n"


origins = st.text(
    st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1, max_size=40
)


class TestCheckpoint:
    """A checkpoint is origin, size and root hash, one per line."""

    def test_body(self) -> None:
        """The body is the origin, the decimal size and the base64 root hash."""
        assert CHECKPOINT.body() == BODY
        assert Checkpoint.parse(BODY) == CHECKPOINT

    @pytest.mark.parametrize(
        ("origin", "size", "root", "message"),
        [
            ("", 1, ROOT_8, "origin '' must be one non-empty line"),
            ("a\nb", 1, ROOT_8, "must be one non-empty line"),
            ("a\tb", 1, ROOT_8, "must be one non-empty line"),
            (ORIGIN, -1, ROOT_8, "tree size -1 is outside"),
            (ORIGIN, 2**64, ROOT_8, "is outside 0..2"),
            (ORIGIN, 1, ROOT_8[:31], "root hash has 31 bytes, not 32"),
        ],
    )
    def test_invalid_checkpoints_are_refused(
        self, origin: str, size: int, root: bytes, message: str
    ) -> None:
        """A checkpoint that could not be written as a note cannot be made."""
        with pytest.raises(MalformedCheckpointError, match=message):
            Checkpoint(origin, size, root)

    def test_errors_are_ledger_errors(self) -> None:
        """Every checkpoint error is a ConsentLedgerError, so the CLI reports it."""
        for error in (
            MalformedNoteError,
            UnverifiedNoteError,
            BadSignatureError,
            MalformedCheckpointError,
            NoteKeyError,
        ):
            assert issubclass(error, CheckpointError)
            assert issubclass(error, ConsentLedgerError)


class TestKeys:
    """Key IDs and verifier keys are those of Go's sumdb/note package."""

    def test_go_verifier_key(self) -> None:
        """Go's test signer key gives Go's test verifier key and key ID."""
        public_key = go_peter_key().public_key()

        assert verifier_key("PeterNeumann", public_key) == GO_PETER_VKEY
        assert key_id("PeterNeumann", public_key) == bytes.fromhex("c74f20a3")

    def test_key_id_definition(self) -> None:
        """The key ID is SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        raw = LOG_KEY.public_key().public_bytes_raw()
        expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]

        assert key_id(ORIGIN, LOG_KEY.public_key()) == expected == LOG_VKEY.key_id

    @pytest.mark.parametrize("text", [GO_PETER_VKEY, GO_ENOCH_VKEY, SUMDB_VKEY, LOG_VKEY.text])
    def test_verifier_key_round_trip(self, text: str) -> None:
        """Parsing a verifier key and writing it back gives the same text."""
        assert parse_verifier_key(text).text == text

    def test_uppercase_key_id_is_read(self) -> None:
        """Key IDs are hexadecimal in either case, as Go's ParseUint reads them."""
        name, hex_id, key = GO_PETER_VKEY.split("+", 2)

        assert parse_verifier_key(f"{name}+{hex_id.upper()}+{key}").text == GO_PETER_VKEY

    def test_mangled_verifier_keys_are_refused(self) -> None:
        """Every substring and every one-character change of a key is refused (Go's test)."""
        manglings = {
            GO_PETER_VKEY[i:j]
            for i in range(len(GO_PETER_VKEY) + 1)
            for j in range(i + 1, len(GO_PETER_VKEY) + 1)
        } - {GO_PETER_VKEY}
        manglings |= {
            GO_PETER_VKEY[:i] + chr(ord(c) + 1) + GO_PETER_VKEY[i + 1 :]
            for i, c in enumerate(GO_PETER_VKEY)
        }
        for text in manglings:
            with pytest.raises(NoteKeyError):
                parse_verifier_key(text)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (  # wrong key length, with a matching key ID (Go's test; its base64 is not canonical)
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                "is not name\\+hexkeyid\\+base64key",
            ),
            (short_key(), "has 31 bytes, an Ed25519 key has 32"),
            (  # unknown algorithm, with a matching key ID (Go's test)
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                "signature type 101, not Ed25519",
            ),
            ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "has key ID"),
            ("PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not name+"),
            ("PeterNeumann+c7_4f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not name+"),
            ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
        ],
    )
    def test_invalid_verifier_keys_say_why(self, text: str, message: str) -> None:
        """A refused key's message names what is wrong."""
        with pytest.raises(NoteKeyError, match=message):
            parse_verifier_key(text)

    @pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u2003b", "a\nb"])
    def test_invalid_key_names_are_refused(self, name: str) -> None:
        """Key names are non-empty, without spaces or '+'."""
        with pytest.raises(NoteKeyError, match="must be non-empty, without spaces or '\\+'"):
            VerifierKey.from_public_key(name, LOG_KEY.public_key())
        with pytest.raises(NoteKeyError):
            sign(CHECKPOINT, name, LOG_KEY)


class TestGoInterop:
    """Notes signed by Go verify here, and ours are byte-for-byte what Go writes."""

    def test_sign_matches_go(self) -> None:
        """Signing Go's test text with Go's test key gives Go's signed note exactly."""
        assert sign_note(GO_TEXT, "PeterNeumann", go_peter_key()) == (GO_TEXT + "\n" + GO_PETER_SIG)

    def test_go_note_verifies(self) -> None:
        """Go's two-signature note verifies with either key; the other one is ignored."""
        note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
        peter, enoch = parse_verifier_key(GO_PETER_VKEY), parse_verifier_key(GO_ENOCH_VKEY)

        assert verify_note(note, [peter]) == GO_TEXT
        assert verify_note(note, [enoch]) == GO_TEXT
        assert verify_note(note.encode(), [peter, enoch]) == GO_TEXT
        with pytest.raises(UnverifiedNoteError, match="signed by PeterNeumann\\+c74f20a3, Enoch"):
            verify_note(note, [])

    def test_go_note_is_not_a_checkpoint(self) -> None:
        """Go's note verifies but its two-line text is not a checkpoint."""
        note = GO_TEXT + "\n" + GO_PETER_SIG

        with pytest.raises(MalformedCheckpointError, match="2 line\\(s\\), expected origin"):
            open_note(note, [parse_verifier_key(GO_PETER_VKEY)])

    def test_go_invalid_signature(self) -> None:
        """Go's corrupted signature (four characters inserted) is a bad signature."""
        note = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]

        with pytest.raises(BadSignatureError, match="invalid signature for key PeterNeumann"):
            verify_note(note, [parse_verifier_key(GO_PETER_VKEY)])

    def test_go_duplicated_signatures(self) -> None:
        """Repeated signatures, and an unknown key's corrupted one, do not stop a note."""
        enoch_corrupted = GO_ENOCH_SIG[:60] + "ABCD" + GO_ENOCH_SIG[60:]
        note = GO_TEXT + "\n" + GO_PETER_SIG * 2 + GO_ENOCH_SIG * 2 + enoch_corrupted

        assert verify_note(note, [parse_verifier_key(GO_PETER_VKEY)]) == GO_TEXT

    @pytest.mark.parametrize(
        "note",
        [
            GO_TEXT,
            GO_TEXT + "\n",
            GO_TEXT + "\n" + GO_PETER_SIG[:-1],
            "\x01" + GO_TEXT + "\n" + GO_PETER_SIG,
            GO_TEXT + "\n" + "— Bad Name " + GO_PETER_SIG.split(" ")[2],
            GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n",
            GO_TEXT + "\n" + GO_PETER_SIG * 101,
        ],
    )
    def test_go_malformed_notes(self, note: str) -> None:
        """Go's malformed notes are malformed here too."""
        with pytest.raises(MalformedNoteError, match="malformed note"):
            verify_note(note, [parse_verifier_key(GO_PETER_VKEY)])

    def test_invalid_utf8_is_malformed(self) -> None:
        """A note that is not UTF-8 is malformed (Go's "\\xff" case)."""
        note = b"\xff" + (GO_TEXT + "\n" + GO_PETER_SIG).encode()

        with pytest.raises(MalformedNoteError, match="not valid UTF-8"):
            verify_note(note, [parse_verifier_key(GO_PETER_VKEY)])

    def test_sum_golang_org_checkpoint_verifies(self) -> None:
        """A checkpoint published by sum.golang.org opens with Go's published key."""
        checkpoint = open_note(SUMDB_NOTE, [parse_verifier_key(SUMDB_VKEY)])

        assert checkpoint == Checkpoint(
            "go.sum database tree",
            30055305,
            base64.b64decode("mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM="),
        )
        assert checkpoint.body() == SUMDB_NOTE.split("\n\n", maxsplit=1)[0] + "\n"

    def test_altered_sum_golang_org_checkpoint_is_refused(self) -> None:
        """Changing the published tree size breaks sum.golang.org's signature."""
        altered = SUMDB_NOTE.replace("30055305", "30055306")

        with pytest.raises(
            BadSignatureError, match=r"invalid signature for key sum\.golang\.org\+033de0ae"
        ):
            open_note(altered, [parse_verifier_key(SUMDB_VKEY)])


class TestSignAndOpen:
    """Our own checkpoints round-trip, and every alteration is caught."""

    def test_signed_note_format(self) -> None:
        """A signed checkpoint is the body, a blank line and one em-dash signature line."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)
        body, line = note.split("\n\n")
        signature = base64.b64decode(line.removeprefix(f"\u2014 {ORIGIN} "))

        assert body + "\n" == BODY
        assert line.endswith("\n")
        assert len(signature) == 4 + 64
        assert signature[:4] == LOG_VKEY.key_id
        LOG_KEY.public_key().verify(signature[4:], BODY.encode())

    @given(origins, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32))
    def test_round_trip(self, origin: str, size: int, root: bytes) -> None:
        """Any checkpoint signed with a key opens with that key, unchanged."""
        checkpoint = Checkpoint(origin, size, root)

        assert open_note(sign(checkpoint, ORIGIN, LOG_KEY), [LOG_VKEY]) == checkpoint

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("example.com/consent-ledger\n", "example.com/consent-ledgeR\n"),
            ("\n8\n", "\n9\n"),
            ("Qyg=", "Qyk="),
        ],
        ids=["origin", "size", "root"],
    )
    def test_altered_body_is_a_bad_signature(self, old: str, new: str) -> None:
        """Changing any line of a signed body breaks the signature."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)
        altered = note.replace(old, new, 1)
        assert altered != note

        with pytest.raises(
            BadSignatureError, match=f"invalid signature for key {re.escape(ORIGIN)}\\+"
        ):
            open_note(altered, [LOG_VKEY])

    @pytest.mark.parametrize("byte", [4, 40, 67])
    def test_altered_signature_is_a_bad_signature(self, byte: int) -> None:
        """Flipping a bit of the signature is caught."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)
        raw = bytearray(base64.b64decode(signature_line(note).split(" ")[2]))
        raw[byte] ^= 1

        with pytest.raises(
            BadSignatureError, match=f"for key {re.escape(ORIGIN)}\\+{LOG_VKEY.key_id.hex()}"
        ):
            open_note(replace_signature(note, bytes(raw)), [LOG_VKEY])

    def test_altered_key_id_is_unverified(self) -> None:
        """A signature whose key ID names no known key is ignored, leaving none."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)
        raw = bytearray(base64.b64decode(signature_line(note).split(" ")[2]))
        raw[0] ^= 1

        with pytest.raises(UnverifiedNoteError, match="no signature by a known key"):
            open_note(replace_signature(note, bytes(raw)), [LOG_VKEY])

    def test_resigned_by_another_key_is_refused(self) -> None:
        """A note re-signed under the log's name with another key does not open."""
        forged = sign(Checkpoint(ORIGIN, 9, ROOT_8), ORIGIN, OTHER_KEY)

        with pytest.raises(UnverifiedNoteError, match=f"signed by {re.escape(ORIGIN)}\\+"):
            open_note(forged, [LOG_VKEY])

    def test_key_id_collision_with_another_key_is_a_bad_signature(self) -> None:
        """A forged signature line claiming the log's name and key ID fails to verify."""
        forged = sign(CHECKPOINT, ORIGIN, OTHER_KEY)
        raw = base64.b64decode(signature_line(forged).split(" ")[2])

        with pytest.raises(BadSignatureError):
            open_note(replace_signature(forged, LOG_VKEY.key_id + raw[4:]), [LOG_VKEY])

    def test_unknown_signatures_are_ignored(self) -> None:
        """A witness's signature, before or after the log's, does not matter."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)
        witness = signature_line(sign(CHECKPOINT, OTHER_VKEY.name, OTHER_KEY))

        assert open_note(note + witness, [LOG_VKEY]) == CHECKPOINT
        assert open_note(BODY + "\n" + witness + signature_line(note), [LOG_VKEY]) == CHECKPOINT
        assert open_note(note + witness, [LOG_VKEY, OTHER_VKEY]) == CHECKPOINT
        assert open_note(note + witness, [OTHER_VKEY]) == CHECKPOINT

    def test_every_known_signature_must_verify(self) -> None:
        """One known key's bad signature rejects the note even if another verifies."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)
        witness = signature_line(sign(Checkpoint(ORIGIN, 9, ROOT_8), OTHER_VKEY.name, OTHER_KEY))

        with pytest.raises(BadSignatureError, match=r"witness\.example/w1"):
            open_note(note + witness, [LOG_VKEY, OTHER_VKEY])

    def test_no_keys_is_unverified(self) -> None:
        """With no trusted keys, no note opens."""
        with pytest.raises(UnverifiedNoteError, match="check the verifier keys"):
            open_note(sign(CHECKPOINT, ORIGIN, LOG_KEY), [])

    def test_duplicate_keys_are_one_key(self) -> None:
        """The same key given twice is not ambiguous."""
        assert open_note(sign(CHECKPOINT, ORIGIN, LOG_KEY), [LOG_VKEY, LOG_VKEY]) == CHECKPOINT

    def test_conflicting_keys_are_refused(self) -> None:
        """Two different keys under one name and key ID are refused, not guessed between."""

        class Colliding(VerifierKey):  # only a hash collision could do this; simulate one
            @property
            def key_id(self) -> bytes:
                return LOG_VKEY.key_id

        with pytest.raises(NoteKeyError, match="ambiguous key"):
            open_note(
                sign(CHECKPOINT, ORIGIN, LOG_KEY), [LOG_VKEY, Colliding(ORIGIN, b"\x07" * 32)]
            )

    def test_bytes_are_accepted(self) -> None:
        """A note read from a file as bytes opens the same."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY)

        assert open_note(note.encode(), [LOG_VKEY]) == CHECKPOINT

    def test_crlf_is_malformed(self) -> None:
        """A note whose newlines became CRLF is malformed, not silently fixed."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY).replace("\n", "\r\n")

        with pytest.raises(MalformedNoteError, match="control character '\\\\r'"):
            open_note(note, [LOG_VKEY])

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("- name AAAAAAAA\n", "is not a signature line"),
            ("— name\n", "does not hold base64"),
            ("— name AAAA\n", "does not hold base64"),
            ("— name AAAAAA==\n", "does not hold base64"),
            ("— name AAAAAAA*\n", "does not hold base64"),
            ("— name AAAAAAB=\n", "does not hold base64"),
            ("— name+x AAAAAAA=\n", "key name"),
            ("—  AAAAAAA=\n", "key name"),
        ],
    )
    def test_malformed_signature_lines(self, line: str, message: str) -> None:
        """Signature lines are em dash, space, key name, space, base64 of 5+ bytes."""
        note = sign(CHECKPOINT, ORIGIN, LOG_KEY) + line

        with pytest.raises(MalformedNoteError, match=message):
            open_note(note, [LOG_VKEY])

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("example.com/log\n8\n", "2 line\\(s\\), expected origin, size and root"),
            ("example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\nextra\n", "1 ext"),
            ("\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "the origin line is empty"),
            ("o\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "size '08' is not a dec"),
            ("o\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "size '-1' is not"),
            ("o\n+8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "size '\\+8' is not"),
            ("o\n1_0\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "size '1_0' is not"),
            ("o\n \nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "size ' ' is not"),
            ("o\n\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "size '' is not"),
            ("o\n\u0668\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "is not a decimal"),
            ("o\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "2\\^64"),
            ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQw==\n", "not 32 bytes in base64"),
            ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyhh\n", "not 32 bytes in base64"),
            ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n", "not 32 bytes in base64"),
            ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n", "not 32 bytes in base64"),
            ("o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz-Nw7_RgQyg=\n", "not 32 bytes in base64"),
            ("o\n8\n XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "not 32 bytes in base64"),
        ],
    )
    def test_bad_body_lines(self, body: str, message: str) -> None:
        """A correctly signed text that is not a strict checkpoint is refused."""
        note = sign_note(body, ORIGIN, LOG_KEY)

        with pytest.raises(MalformedCheckpointError, match=f"malformed checkpoint: .*{message}"):
            open_note(note, [LOG_VKEY])

    def test_body_is_read_only_after_the_signature(self) -> None:
        """An unsigned bad body is reported as unverified, not parsed."""
        note = sign_note("not\na checkpoint\n", ORIGIN, OTHER_KEY)

        with pytest.raises(UnverifiedNoteError):
            open_note(note, [LOG_VKEY])

    @pytest.mark.parametrize("text", ["no final newline", "tab\there\n", ""])
    def test_sign_note_refuses_unsignable_text(self, text: str) -> None:
        """Only text ending in a newline, without control characters, can be signed."""
        with pytest.raises(MalformedNoteError, match="must end with a newline"):
            sign_note(text, ORIGIN, LOG_KEY)

    def test_text_with_blank_lines(self) -> None:
        """A note text may hold blank lines: the last blank line starts the signatures."""
        text = "first\n\nsecond\n\n"

        assert verify_note(sign_note(text, ORIGIN, LOG_KEY), [LOG_VKEY]) == text
