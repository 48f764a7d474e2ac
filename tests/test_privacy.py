"""Personal data never reaches the store in clear, and the key material guards it."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consent_ledger import (
    ConsentLedger,
    Evidence,
    KeyMaterialError,
    LedgerNotFoundError,
    MasterKey,
    MissingKeyError,
    NotALedgerError,
    OptIn,
    OptOut,
    WrongKeyError,
)
from consent_ledger.privacy.keys import _derive
from consent_ledger.storage.stores import PostgresStore, parse_store

from .conftest import BUSINESS, StoreFactory, new_ledger

if TYPE_CHECKING:
    from collections.abc import Iterable

PHONES = ("+447700900123", "+12025550143", "+61491570156")
WRITTEN_AS = ("+44 7700 900123", "+1 (202) 555-0143", "+61 491 570 156")
EMAIL = "ada.lovelace@example.com"
IP = "198.51.100.23"


def needles(values: Iterable[str]) -> list[bytes]:
    """Each value (and a phone's bare digits), its plain SHA-256, as bytes and as hex text."""
    found: list[bytes] = []
    for value in values:
        forms = {value}
        if value.startswith("+"):
            forms.add(value[1:])  # the wa_id form; long enough never to match by chance
        for form in forms:
            raw = form.encode()
            digest = hashlib.sha256(raw)
            found += [raw, digest.hexdigest().encode(), digest.digest()]
            found += [raw.hex().encode(), digest.digest().hex().encode()]
    return found


def record_personal_data(ledger: ConsentLedger) -> None:
    for written in WRITTEN_AS:
        ledger.opt_in(
            OptIn(
                business_id=BUSINESS,
                identifier=written,
                categories=("offers",),
                notice="whatsapp-optin",
                method="web-form",
                evidence=Evidence(text=f"form filled by {EMAIL}", ip=IP, user_agent="Mozilla/5.0"),
            )
        )
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=written, method="whatsapp-thread"))
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=f"email:{EMAIL}",
            channel="whatsapp",
            categories=("offers",),
            notice="whatsapp-optin",
            method="web-form",
        )
    )


def stored_bytes(db: str) -> bytes:
    store = parse_store(db)
    if isinstance(store, PostgresStore):
        pg_dump = shutil.which("pg_dump")
        assert pg_dump is not None, "pg_dump is needed to check the PostgreSQL store"
        return subprocess.run(  # noqa: S603 (fixed program, test-made arguments)
            [
                pg_dump,
                f"--host={store.host}",
                f"--port={store.port}",
                f"--username={store.user}",
                f"--schema={store.schema}",
                store.dbname,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": store.password},
        ).stdout
    path = Path(db)
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()
    )


class TestNothingPersonalInClear:
    def test_no_identifier_ip_or_evidence_nor_a_plain_hash_of_one_is_stored(
        self, stores: StoreFactory
    ) -> None:
        ledger, db, _ = new_ledger(stores)
        record_personal_data(ledger)
        # Read it back first, so the check covers a ledger in use, not an empty file.
        assert ledger.get_history(PHONES[0], business_id=BUSINESS).identifier == PHONES[0]
        content = stored_bytes(db)
        ledger.close()

        # The scan sees the store's contents (pg_dump writes bytea as hex).
        assert b"Acme Outfitters" in content or b"Acme Outfitters".hex().encode() in content
        leaked = [n for n in needles((*PHONES, EMAIL, IP)) if n in content]
        assert leaked == []


class TestKeyMaterial:
    def test_sqlite_key_file_is_created_beside_the_ledger_readable_by_its_owner_only(
        self, tmp_path: Path
    ) -> None:
        ledger, location = ConsentLedger.create(tmp_path / "ledger.db")
        ledger.close()

        assert location.file == tmp_path / "ledger.db.key"
        assert stat.S_IMODE(location.file.stat().st_mode) == 0o600

    def test_a_missing_key_file_is_a_clear_error(self, tmp_path: Path) -> None:
        ConsentLedger.create(tmp_path / "ledger.db")[0].close()
        (tmp_path / "ledger.db.key").unlink()

        with pytest.raises(MissingKeyError, match=r"no key file at .*ledger\.db\.key"):
            ConsentLedger.open(tmp_path / "ledger.db")

    def test_another_ledgers_key_is_refused(self, tmp_path: Path) -> None:
        ConsentLedger.create(tmp_path / "one.db")[0].close()
        ConsentLedger.create(tmp_path / "two.db")[0].close()

        with pytest.raises(WrongKeyError, match="belongs to ledger"):
            ConsentLedger.open(tmp_path / "one.db", key_file=tmp_path / "two.db.key")

    def test_a_wrong_master_key_is_refused(self, tmp_path: Path) -> None:
        ConsentLedger.create(tmp_path / "ledger.db")[0].close()

        with pytest.raises(WrongKeyError, match="does not open this ledger"):
            ConsentLedger.open(tmp_path / "ledger.db", master_key=MasterKey.generate())

    def test_a_key_file_others_can_read_is_refused(self, tmp_path: Path) -> None:
        ConsentLedger.create(tmp_path / "ledger.db")[0].close()
        (tmp_path / "ledger.db.key").chmod(0o644)

        with pytest.raises(KeyMaterialError, match="chmod 600"):
            ConsentLedger.open(tmp_path / "ledger.db")

    def test_the_key_can_come_from_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = MasterKey.generate()
        monkeypatch.setenv("CONSENT_LEDGER_KEY", key.to_text())
        ledger, location = ConsentLedger.create(tmp_path / "ledger.db")
        ledger.close()

        assert location.env_var == "CONSENT_LEDGER_KEY"
        assert not (tmp_path / "ledger.db.key").exists()
        ConsentLedger.open(tmp_path / "ledger.db").close()

    def test_init_never_overwrites_a_key_file(self, tmp_path: Path) -> None:
        (tmp_path / "ledger.db.key").write_text("precious")

        with pytest.raises(KeyMaterialError, match="refusing to overwrite"):
            ConsentLedger.create(tmp_path / "ledger.db")

        assert (tmp_path / "ledger.db.key").read_text() == "precious"
        assert not (tmp_path / "ledger.db").exists()


class TestOpeningSomethingElse:
    def test_no_file_is_a_clear_error_and_creates_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(LedgerNotFoundError, match="create one with: consent-ledger init"):
            ConsentLedger.open(tmp_path / "missing.db")

        assert list(tmp_path.iterdir()) == []

    def test_a_file_that_is_not_a_ledger_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("hello")

        with pytest.raises(NotALedgerError, match="is not a consent ledger"):
            ConsentLedger.open(tmp_path / "notes.txt")

    @pytest.mark.postgres
    def test_a_postgres_schema_without_a_ledger_is_refused(self, tmp_path: Path) -> None:
        factory = StoreFactory("postgres", tmp_path)
        db, key_file = factory.new_location()

        with pytest.raises(NotALedgerError, match="no consent ledger at postgresql://"):
            ConsentLedger.open(db, key_file=key_file)
        factory.cleanup()


def test_an_opt_out_reason_is_sealed_too(stores: StoreFactory) -> None:
    """The person's own words may identify them: a reason is stored sealed."""
    ledger, db, _ = new_ledger(stores)
    words = "Please stop, this is Ada Lovelace at Flat 4"
    ledger.opt_out(
        OptOut(business_id=BUSINESS, identifier=PHONES[0], method="email-link", reason=words)
    )

    [_, opted_out] = ledger.get_history(PHONES[0], business_id=BUSINESS).entries
    content = stored_bytes(db)
    ledger.close()

    assert opted_out.reason == words
    assert words.encode() not in content
    assert words.encode().hex().encode() not in content


@pytest.mark.parametrize("purpose", ["key-wrapping", "identifier-lookup", "key-check", "x" * 300])
def test_derived_keys_are_cryptography_s_hkdf(purpose: str) -> None:
    """The keys derived with hmac alone are HKDF-SHA256's, byte for byte (RFC 5869)."""
    for master in (MasterKey(bytes(32)), MasterKey(bytes(range(32))), MasterKey.generate()):
        info = f"consent-ledger/v1/{purpose}".encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)

        assert _derive(master, purpose) == hkdf.derive(master.secret)
