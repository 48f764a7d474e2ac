"""Fixtures: ledgers on both stores, the standard business and notices, a CLI runner.

The PostgreSQL tests run against the server named by CONSENT_LEDGER_TEST_POSTGRES
(for example ``postgresql://postgres@127.0.0.1:5432/test``), each in a schema of its own.
Unset, they are skipped; set but unreachable, they fail: CI sets it.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql

from consent_ledger import ConsentLedger, PublishNotice, RegisterBusiness
from consent_ledger.storage.stores import PostgresStore, parse_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

PG_ENV = "CONSENT_LEDGER_TEST_POSTGRES"
BUSINESS = "acme"
BUSINESS_NAME = "Acme Outfitters"
WHATSAPP_TEXT = (
    "Yes, Acme Outfitters may send me WhatsApp messages about my orders, offers, "
    "newsletters and recommendations. Reply STOP to stop."
)
SMS_TEXT = "Acme Outfitters: reply YES to get offers and order updates by SMS. STOP to end."

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def postgres_url() -> str:
    """The test server's URL, or skip; fail if it is set but unreachable."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    store = parse_store(url)
    assert isinstance(store, PostgresStore)
    try:
        with psycopg.connect(
            host=store.host,
            port=store.port,
            user=store.user,
            dbname=store.dbname,
            connect_timeout=5,
        ):
            pass
    except psycopg.OperationalError as e:
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {e}")
    return url


class StoreFactory:
    """Makes new, empty ledger locations on one backend, and cleans them up."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self._schemas: list[tuple[str, str]] = []

    def new_location(self) -> tuple[str, Path | None]:
        """A --db value for a new ledger, and the key file to create (PostgreSQL)."""
        name = f"cl_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return str(self.folder / f"{name}.db"), None
        base = postgres_url()
        self._schemas.append((base, name))
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}schema={name}", self.folder / f"{name}.key"

    def cleanup(self) -> None:
        for base, schema in self._schemas:
            store = parse_store(base)
            assert isinstance(store, PostgresStore)
            with psycopg.connect(
                host=store.host,
                port=store.port,
                user=store.user,
                dbname=store.dbname,
                autocommit=True,
            ) as connection:
                connection.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = StoreFactory(request.param, tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module", params=BACKENDS)
def module_stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreFactory]:
    factory = StoreFactory(request.param, tmp_path_factory.mktemp("stores"))
    yield factory
    factory.cleanup()


def new_ledger(factory: StoreFactory) -> tuple[ConsentLedger, str, Path | None]:
    """A ledger with business acme and its notices: whatsapp-optin@1 and @2, sms-optin@1."""
    db, key_file = factory.new_location()
    ledger, _ = ConsentLedger.create(
        db,
        key_file=key_file,
        business=RegisterBusiness(business_id=BUSINESS, display_name=BUSINESS_NAME),
    )
    publish_standard_notices(ledger)
    return ledger, db, key_file


def publish_standard_notices(ledger: ConsentLedger) -> None:
    for categories in (
        ("order-updates", "offers"),
        ("order-updates", "offers", "newsletters", "recommendations"),
    ):
        ledger.publish_notice(
            PublishNotice(
                business_id=BUSINESS,
                notice_id="whatsapp-optin",
                language="en",
                categories=categories,
                text=WHATSAPP_TEXT,
            )
        )
    ledger.publish_notice(
        PublishNotice(
            business_id=BUSINESS,
            notice_id="sms-optin",
            language="en",
            channel="sms",
            categories=("order-updates", "offers"),
            text=SMS_TEXT,
        )
    )


@pytest.fixture
def ledger_at(stores: StoreFactory) -> Iterator[tuple[ConsentLedger, str, Path | None]]:
    ledger, db, key_file = new_ledger(stores)
    yield ledger, db, key_file
    ledger.close()


@pytest.fixture
def ledger(ledger_at: tuple[ConsentLedger, str, Path | None]) -> ConsentLedger:
    return ledger_at[0]


@pytest.fixture(scope="module")
def shared_ledger(module_stores: StoreFactory) -> Iterator[ConsentLedger]:
    """One ledger for a module's property tests; each example uses new people."""
    ledger, _, _ = new_ledger(module_stores)
    yield ledger
    ledger.close()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the caller's ledger, key or business settings."""
    for name in list(os.environ):
        if name.startswith(("CONSENT_LEDGER_", "CONSENTLEDGER_")) and name != PG_ENV:
            monkeypatch.delenv(name)


def counter() -> Callable[[], int]:
    state = {"n": 0}

    def next_value() -> int:
        state["n"] += 1
        return state["n"]

    return next_value
