"""How events are stored: as JSON (orjson) with their schema version.

Reading an older version runs the event class's upcasters (``upcast_v1_v2`` ...)
before validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

# Registers the prefix of the events' pinned topics: resolving one imports its aggregate.
import consent_ledger.model  # noqa: F401

if TYPE_CHECKING:
    from eventsourcing.domain import DomainEventProtocol


class OrjsonTranscoder(Transcoder):
    """Encodes plain JSON-able values with orjson."""

    def encode(self, obj: Any) -> bytes:
        """JSON bytes of ``obj``."""
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        """The value of JSON bytes."""
        return orjson.loads(data)


class PydanticMapper(Mapper[UUID]):
    """Maps pydantic domain events to stored events and back, with upcasting.

    The stored state is the event's JSON without its id and version (those are columns),
    plus ``class_version``: the schema version the event was written with.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """The stored form of a domain event."""
        event = cast("Any", domain_event)
        state = event.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        state["class_version"] = type(event).class_version
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=get_topic(type(event)),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """The domain event of a stored event, upcast to the current schema version."""
        cls = resolve_topic(stored_event.topic)
        data = stored_event.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        current = _current_body(data, cls.class_version)
        if current is not None:  # the common case: parse and validate in one pass
            tail = b',"originator_id":"%s","originator_version":%d}' % (
                str(stored_event.originator_id).encode(),
                stored_event.originator_version,
            )
            return cast("DomainEventProtocol[UUID]", cls.model_validate_json(current + tail))
        state = self.transcoder.decode(data)
        version = state.pop("class_version", 1)
        while version < cls.class_version:
            getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        return cast("DomainEventProtocol[UUID]", cls.model_validate(state))


_VERSION_KEY = b',"class_version":'


def _current_body(data: bytes, class_version: int) -> bytes | None:
    """The stored JSON without its closing ``,"class_version":N}``, if N is current.

    :meth:`PydanticMapper.to_stored_event` writes ``class_version`` last, so an event of
    the current version can be validated straight from its bytes with the ids appended.
    Anything else (an older version to upcast, another shape) returns None.
    """
    start = data.rfind(_VERSION_KEY)
    version = data[start + len(_VERSION_KEY) : -1]
    if start < 0 or not data.endswith(b"}") or version != str(class_version).encode():
        return None
    return data[:start]
