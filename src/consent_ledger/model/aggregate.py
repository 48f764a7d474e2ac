"""The base of the ledger's aggregates and their events.

Events are frozen pydantic models with pinned topics (``TOPIC``) and a schema version, so
stored events keep their meaning when code moves, and a change of shape is an upcaster, not an edit.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from pydantic import AwareDatetime

from consent_ledger.model.values import (
    Immutable,
)

# Deterministic ids for businesses and notices (not personal data); subjects get UUIDv7.
ID_NAMESPACE = uuid.UUID("5f0d7e55-2d4b-4f4e-9b7c-1e0c0a5e1d90")


class DomainEvent(Immutable):
    """Base of every stored event: who it belongs to, its position, when it was recorded.

    ``timestamp`` is when the ledger recorded the event; events about consent also say
    when the decision occurred (``provenance.occurred_at``), which may be earlier.
    """

    class_version: ClassVar[int] = 1

    originator_id: uuid.UUID
    originator_version: int
    timestamp: AwareDatetime


class Aggregate(BaseAggregate[uuid.UUID]):
    """Base of the ledger's aggregates."""

    class Event(DomainEvent, CanMutateAggregate[uuid.UUID]):
        """Base of the events of an aggregate."""

    class Created(Event, CanInitAggregate[uuid.UUID]):
        """Base of the first event of an aggregate."""

        originator_topic: str
