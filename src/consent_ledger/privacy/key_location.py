"""Where a ledger's master key is kept, how it is found, and whether it opens the ledger.

The key never lives in the database: beside an SQLite ledger in a key file (mode 0600) by
default, or in a file or environment variable named by the operator (always, for
PostgreSQL). Opening a ledger finds the key in this order: the key given; ``--key-file``;
``CONSENT_LEDGER_KEY`` (base64); ``CONSENT_LEDGER_KEY_FILE``; the file beside an SQLite
ledger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from consent_ledger.exceptions import (
    KeyMaterialError,
    MissingKeyError,
    NotALedgerError,
    WrongKeyError,
)
from consent_ledger.privacy.keys import MasterKey, read_key_file

if TYPE_CHECKING:
    from collections.abc import Mapping

    from consent_ledger.privacy.keys import KeyRing
    from consent_ledger.storage.stores import Store

LEDGER_FORMAT = "consent-ledger/1"
KEY_ENV = "CONSENT_LEDGER_KEY"
KEY_FILE_ENV = "CONSENT_LEDGER_KEY_FILE"


@dataclass(frozen=True)
class KeyLocation:
    """Where a ledger's master key is kept (a file, or an environment variable)."""

    file: Path | None
    env_var: str | None = None

    def __str__(self) -> str:
        """A phrase naming the place."""
        if self.file is not None:
            return f"key file {self.file}"
        return f"environment variable {self.env_var}"


def new_key(
    store: Store, key_file: Path | None, master_key: MasterKey | None
) -> tuple[MasterKey, KeyLocation]:
    """The master key of a new ledger, and where it will be kept.

    Raises:
        MissingKeyError: a PostgreSQL ledger was given nowhere to keep its key.
        KeyMaterialError: a key file exists where the new one would go.
    """
    if master_key is not None:
        return master_key, KeyLocation(file=key_file)
    if key_file is None and os.environ.get(KEY_ENV):
        return MasterKey.from_text(os.environ[KEY_ENV]), KeyLocation(file=None, env_var=KEY_ENV)
    key_file = key_file or _env_path(KEY_FILE_ENV) or store.default_key_file
    if key_file is None:
        msg = (
            f"a PostgreSQL ledger keeps its master key outside the database: pass --key-file "
            f"PATH to create one there, or set {KEY_ENV} to a base64 key of 32 bytes"
        )
        raise MissingKeyError(msg)
    if _is_database_file(store, key_file):
        msg = f"the key file {key_file} would be the database's own file: keep it elsewhere"
        raise KeyMaterialError(msg)
    try:
        exists = key_file.exists()
    except OSError:  # a name too long: writing it says so
        exists = False
    if exists:
        msg = f"a key file already exists at {key_file}; refusing to overwrite it"
        raise KeyMaterialError(msg)
    return MasterKey.generate(), KeyLocation(file=key_file)


def _is_database_file(store: Store, key_file: Path) -> bool:
    """Whether ``key_file`` is where an SQLite ledger keeps its database (or its journal)."""
    database = getattr(store, "path", None)
    if database is None:
        return False
    files = {Path(f"{database}{suffix}").resolve() for suffix in ("", "-wal", "-shm")}
    return key_file.resolve() in files


def find_key(
    store: Store, key_file: Path | None, master_key: MasterKey | None
) -> tuple[str | None, MasterKey, KeyLocation | None]:
    """The master key of an existing ledger: the ledger id it claims, the key, its place.

    Raises:
        MissingKeyError: no key was found.
    """
    if master_key is not None:
        return None, master_key, None
    if key_file is None and os.environ.get(KEY_ENV):
        location = KeyLocation(file=None, env_var=KEY_ENV)
        return None, MasterKey.from_text(os.environ[KEY_ENV]), location
    key_file = key_file or _env_path(KEY_FILE_ENV) or store.default_key_file
    if key_file is None:
        msg = (
            f"no master key for the ledger at {store}: set {KEY_ENV} or {KEY_FILE_ENV}, "
            "or pass --key-file"
        )
        raise MissingKeyError(msg)
    try:
        ledger_id, master = read_key_file(key_file)
    except MissingKeyError:
        msg = (
            f"no key file at {key_file} for the ledger at {store}: without its master key "
            f"a ledger cannot be opened (set {KEY_FILE_ENV} or pass --key-file)"
        )
        raise MissingKeyError(msg) from None
    return ledger_id, master, KeyLocation(file=key_file)


def check_key(
    meta: Mapping[str, str],
    keyring: KeyRing,
    key_ledger_id: str | None,
    location: KeyLocation | None,
) -> None:
    """Raise unless the ledger's ``meta`` is of this format and the key opens it.

    Raises:
        NotALedgerError: the ledger has another format.
        WrongKeyError: the key belongs to another ledger, or does not open this one.
    """
    if meta.get("format") != LEDGER_FORMAT:
        msg = f"this ledger has format {meta.get('format')!r}; this version reads {LEDGER_FORMAT}"
        raise NotALedgerError(msg)
    ledger_id = meta["ledger_id"]
    where = f" from {location}" if location else ""
    if key_ledger_id is not None and key_ledger_id != ledger_id:
        msg = f"the key{where} belongs to ledger {key_ledger_id}, not to this one ({ledger_id})"
        raise WrongKeyError(msg)
    if keyring.key_check(ledger_id) != meta["key_check"]:
        msg = f"the master key{where} does not open this ledger ({ledger_id})"
        raise WrongKeyError(msg)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
