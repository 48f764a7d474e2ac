"""Every event type survives the store unchanged, and old stored shapes are upcast."""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from consent_ledger import Business, ConsentLedger, ConsentRecord, Notice
from consent_ledger.model.aggregate import Aggregate
from consent_ledger.model.identifiers import IdentifierKind
from consent_ledger.model.taxonomy import CATEGORIES, Channel, LegalBasis, Method, TemplateCategory
from consent_ledger.model.values import NoticeRef, Provenance, Sealed
from consent_ledger.storage.mapper import OrjsonTranscoder, PydanticMapper

slugs = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
texts = st.text(min_size=1, max_size=40).filter(str.strip)
times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (made aware by timezones=)
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC]),
)
category_names = st.sampled_from(sorted(CATEGORIES)) | st.from_regex(
    r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True
)  # built in, or a business's own
category_sets = st.lists(category_names, min_size=1, max_size=5, unique=True).map(
    lambda c: tuple(sorted(c))
)
sealed = st.builds(
    Sealed,
    nonce=st.binary(min_size=12, max_size=12).map(lambda b: b.hex()),
    ct=st.binary(min_size=16, max_size=64).map(lambda b: b.hex()),
)
notice_refs = st.builds(
    NoticeRef,
    notice_id=slugs,
    version=st.integers(1, 99),
    content_hash=st.just("sha256:" + "ab" * 32),
    business_name=texts,
    language=st.sampled_from(["en", "it", "pt-BR"]),
)
provenances = st.builds(
    Provenance,
    method=st.sampled_from(Method),
    collection_point=st.none() | texts,
    actor=st.sampled_from(["subject", "operator:ada", "system:import"]),
    occurred_at=times,
)


def events(
    cls: type[Any], position: int, **fields: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    return st.builds(
        cls,
        originator_id=st.uuids(),
        originator_version=st.just(position),
        timestamp=times,
        **fields,
    )


ALL_EVENTS = st.one_of(
    events(
        Business.Registered,
        1,
        originator_topic=st.just(get_topic(Business)),
        business_id=slugs,
        display_name=texts,
    ),
    events(Business.NoticeAdded, 2, notice_id=slugs),
    events(
        Business.CategoryDefined,
        3,
        name=category_names,
        description=texts,
        template_category=st.sampled_from(TemplateCategory),
        channels=st.lists(st.sampled_from(Channel), min_size=1, unique=True).map(tuple),
    ),
    events(Business.CategoryRetired, 4, name=category_names),
    events(
        Notice.Registered,
        1,
        originator_topic=st.just(get_topic(Notice)),
        business_id=slugs,
        notice_id=slugs,
    ),
    events(
        Notice.VersionPublished,
        2,
        version=st.integers(1, 9),
        business_name=texts,
        language=st.just("it"),
        channel=st.sampled_from(Channel),
        categories=category_sets,
        text=texts,
        content_hash=st.just("sha256:" + "cd" * 32),
        policy_url=st.none() | texts,
    ),
    events(
        ConsentRecord.SubjectRegistered,
        1,
        originator_topic=st.just(get_topic(ConsentRecord)),
        business_id=slugs,
        identifier_kind=st.sampled_from(IdentifierKind),
        identifier=sealed,
    ),
    events(
        ConsentRecord.OptedIn,
        2,
        channel=st.sampled_from(Channel),
        categories=category_sets,
        sender=st.none() | slugs,
        notice=notice_refs,
        provenance=provenances,
        expires_at=st.none() | times,
        awaiting_confirmation=st.booleans(),
        legal_basis=st.sampled_from(LegalBasis),
        jurisdiction=st.none() | st.just("IT"),
        evidence=st.none() | sealed,
    ),
    events(
        ConsentRecord.OptInConfirmed,
        3,
        channel=st.sampled_from(Channel),
        categories=category_sets,
        sender=st.none() | slugs,
        provenance=provenances,
        evidence=st.none() | sealed,
    ),
    events(
        ConsentRecord.OptedOut,
        4,
        channel=st.none() | st.sampled_from(Channel),
        categories=st.none() | category_sets,
        sender=st.none() | slugs,
        provenance=provenances,
        reason=st.none() | sealed,
        evidence=st.none() | sealed,
    ),
    events(
        ConsentRecord.CategoriesChanged,
        5,
        channel=st.sampled_from(Channel),
        granted=category_sets,
        withdrawn=st.just(()),
        sender=st.none() | slugs,
        notice=st.none() | notice_refs,
        provenance=provenances,
        expires_at=st.none() | times,
        legal_basis=st.sampled_from(LegalBasis),
        jurisdiction=st.none() | st.just("US-CA"),
        evidence=st.none() | sealed,
    ),
)


@given(event=ALL_EVENTS)
def test_every_event_type_round_trips_through_the_store(
    shared_ledger: ConsentLedger, event: Any
) -> None:
    """Stored, selected and mapped back, an event equals the one written."""
    event = event.model_copy(update={"originator_id": uuid.uuid4()})  # new stream each example
    stored = shared_ledger.mapper.to_stored_event(event)
    shared_ledger.recorder.insert_events([stored])

    [selected] = shared_ledger.recorder.select_events(event.originator_id)
    loaded = shared_ledger.mapper.to_domain_event(selected)

    assert type(loaded) is type(event)
    assert loaded == event


@given(event=ALL_EVENTS)
def test_an_event_reads_the_same_however_its_stored_json_is_laid_out(event: Any) -> None:
    """The mapper reads its own layout in one pass; any other layout must read the same."""
    mapper = PydanticMapper(transcoder=OrjsonTranscoder())
    stored = mapper.to_stored_event(event)
    state = orjson.loads(stored.state)
    reordered = {"class_version": state.pop("class_version"), **state}  # version first
    other_layout = dataclasses.replace(
        stored, state=orjson.dumps(reordered, option=orjson.OPT_INDENT_2)
    )

    assert mapper.to_domain_event(stored) == mapper.to_domain_event(other_layout) == event


def test_stored_state_names_its_schema_version() -> None:
    """Every stored event says which schema version wrote it."""
    event = Business.Registered(
        originator_id=uuid.uuid4(),
        originator_version=1,
        timestamp=datetime.now(UTC),
        originator_topic=get_topic(Business),
        business_id="acme",
        display_name="Acme",
    )
    stored = PydanticMapper(transcoder=OrjsonTranscoder()).to_stored_event(event)

    assert orjson.loads(stored.state)["class_version"] == 1


OPT_INS = events(
    ConsentRecord.OptedIn,
    2,
    channel=st.sampled_from(Channel),
    categories=category_sets,
    notice=notice_refs,
    provenance=provenances,
)


@given(event=OPT_INS)
def test_a_stored_notice_is_validated_as_the_rest_of_its_event(event: Any) -> None:
    """A stored notice reference with a field too many, or of the wrong type, is refused."""
    mapper = PydanticMapper(transcoder=OrjsonTranscoder())
    stored = mapper.to_stored_event(event)
    state = orjson.loads(stored.state)

    for notice in (state["notice"] | {"url": "x"}, state["notice"] | {"version": "two"}):
        bad = dataclasses.replace(stored, state=orjson.dumps(state | {"notice": notice}))
        with pytest.raises(ValidationError, match="notice"):
            mapper.to_domain_event(bad)
    loaded = mapper.to_domain_event(stored)
    assert isinstance(loaded, ConsentRecord.OptedIn)
    assert loaded.notice == event.notice


# An aggregate whose event changed shape: version 1 had `name`, version 2 splits it.
os.environ.setdefault("EVENTSOURCING_DISABLE_REDEFINITION_CHECK", "1")


class Shop(Aggregate):
    class Event(Aggregate.Event):
        pass

    class Opened(Aggregate.Created):
        pass

    class Renamed(Event):
        class_version: ClassVar[int] = 2
        display_name: str
        legal_name: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            name = state.pop("name")
            state["display_name"] = name
            state["legal_name"] = name


def test_an_old_stored_shape_is_upcast_into_the_current_class() -> None:
    """A version-1 event, as an older release stored it, reads as the version-2 class."""
    mapper = PydanticMapper(transcoder=OrjsonTranscoder())
    shop_id = uuid.uuid4()
    old_state = {"timestamp": "2026-01-02T03:04:05+00:00", "name": "Acme", "class_version": 1}
    stored = StoredEvent(
        originator_id=shop_id,
        originator_version=2,
        topic=get_topic(Shop.Renamed),
        state=orjson.dumps(old_state),
    )

    event = mapper.to_domain_event(stored)

    assert isinstance(event, Shop.Renamed)
    assert (event.display_name, event.legal_name) == ("Acme", "Acme")
    assert orjson.loads(mapper.to_stored_event(event).state)["class_version"] == 2


def test_an_event_stored_without_a_version_is_read_as_version_one() -> None:
    mapper = PydanticMapper(transcoder=OrjsonTranscoder())
    stored = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=2,
        topic=get_topic(Shop.Renamed),
        state=orjson.dumps({"timestamp": "2026-01-02T03:04:05+00:00", "name": "Initech"}),
    )

    event = mapper.to_domain_event(stored)

    assert isinstance(event, Shop.Renamed)
    assert event.legal_name == "Initech"


@pytest.mark.parametrize("field", ["identifier", "evidence"])
def test_sealed_values_are_bound_to_their_event(field: str) -> None:
    """A sealed value moved to another version or purpose does not open."""
    from consent_ledger import KeyMaterialError  # noqa: PLC0415
    from consent_ledger.privacy.keys import KeyRing, MasterKey  # noqa: PLC0415

    keyring = KeyRing(MasterKey.generate())
    data_key, _ = keyring.new_data_key(uuid.uuid4())
    value = data_key.seal("+447700900123", version=2, purpose=field)

    assert data_key.open(value, version=2, purpose=field) == "+447700900123"
    with pytest.raises(KeyMaterialError, match="does not open"):
        data_key.open(value, version=3, purpose=field)
    with pytest.raises(KeyMaterialError, match="does not open"):
        data_key.open(value, version=2, purpose="other")
