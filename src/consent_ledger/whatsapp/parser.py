"""WhatsApp webhooks: Meta's bodies read into typed consent signals. Pure: no ledger calls.

Meta posts a body per batch of changes to a webhook::

    {"object": "whatsapp_business_account",
     "entry": [{"id": "<WABA_ID>", "changes": [{"field": "messages", "value": {...}}]}]}

:func:`parse` turns one body into the signals of :mod:`consent_ledger.whatsapp.signals`
(:mod:`consent_ledger.whatsapp.bodies` reads bodies from a file). Reading rules:

- Unknown fields are ignored, and so are changes of fields that carry no consent signal
  (listed in :attr:`ParseResult.ignored` with the reason).
- A malformed item becomes a :class:`Problem` naming where it is
  (``entry[0].changes[1].value.messages[0]: no 'from' or 'from_user_id'``); the other items
  of the body still parse. A malformed envelope (no ``entry``) is one problem for the body.
- Signals come in the order of the body, each with its own time: nothing is sorted, so
  out-of-order deliveries keep the times they happened at.
- Each signal has an :attr:`~consent_ledger.whatsapp.signals.Signal.idempotency_key` (the
  wamid for messages and statuses; for the id-less ``user_preferences`` and
  ``template_category_update``, a SHA-256 of the canonical JSON of the item and where it
  came from), so a redelivered body is recognised. **It is personal data**: a wamid is
  base64 of a record that holds the person's phone number in clear, and a hash of a
  preference item can be brute-forced from the number. Store only a keyed hash of it (like
  the ledger's identifier lookups), never the key itself.
- Each signal's :attr:`~consent_ledger.whatsapp.signals.Signal.evidence` is the canonical
  JSON (sorted keys, no whitespace) of a webhook body that holds only that signal's item,
  with the change's ``metadata`` and the person's ``contacts`` entry: the raw payload to
  seal as the event's evidence, without the other people a batched body carries. It parses
  back to the same signal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

from consent_ledger.whatsapp._items import (
    error_item,
    new_identity,
    person,
    preference_action,
    recipient_of,
    reply_of,
    sender_of,
)
from consent_ledger.whatsapp._json import (
    JSONObject,
    MalformedError,
    array,
    as_object,
    canonical,
    numeric_id,
    optional_array,
    optional_string,
    optional_text,
    required,
    string,
    type_name,
    unix_time,
)
from consent_ledger.whatsapp.keywords import Keywords
from consent_ledger.whatsapp.signals import (
    DELIVERY_SIGNALS,
    MARKETING_MESSAGES,
    AnySignal,
    BusinessNumber,
    CategoryUpdateStage,
    DeliveryError,
    DeliverySignal,
    IdentityChange,
    IdentityChanged,
    InboundMessage,
    MarketingPreference,
    TemplateCategoryUpdate,
    WhatsAppUser,
)

if TYPE_CHECKING:
    from collections.abc import Callable

_P = ParamSpec("_P")
WABA_OBJECT = "whatsapp_business_account"


@dataclass(frozen=True)
class Problem:
    """A part of a body that could not be read, and why."""

    path: str
    message: str

    def __str__(self) -> str:
        """``path: message``."""
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class Ignored:
    """A well-formed part of a body that carries no consent signal, and why it was skipped."""

    path: str
    reason: str


@dataclass(frozen=True)
class ParseResult:
    """What one body says: its signals, the items that could not be read, what was skipped."""

    signals: tuple[AnySignal, ...] = ()
    problems: tuple[Problem, ...] = ()
    ignored: tuple[Ignored, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every item could be read."""
        return not self.problems


def parse(body: object, keywords: Keywords | None = None) -> ParseResult:
    """Read one webhook body (the JSON Meta posts, decoded) into signals.

    Args:
        body: The decoded JSON body.
        keywords: The keyword rules to classify inbound texts with (default: the shipped
            sets, :meth:`Keywords.default`).

    Returns:
        The signals in body order, the problems (each with its path), the ignored parts.
    """
    parser = _Parser(keywords or Keywords.default())
    parser.read_body(body)
    return ParseResult(tuple(parser.signals), tuple(parser.problems), tuple(parser.ignored))


_IDENTITY_CHANGES = {
    "user_changed_number": IdentityChange.NUMBER,
    "user_changed_user_id": IdentityChange.USER_ID,
}


@dataclass(frozen=True)
class _Change:
    """One ``entry[i].changes[j]``, with what its items need from around it."""

    waba_id: str
    entry: JSONObject
    field: str
    value: JSONObject
    path: str  # of the value

    def sender(self) -> BusinessNumber:
        path = f"{self.path}.metadata"
        metadata = as_object(required(self.value, "metadata", self.path), path)
        return BusinessNumber(
            waba_id=self.waba_id,
            phone_number_id=numeric_id(metadata, "phone_number_id", path),
            display_phone_number=optional_string(metadata, "display_phone_number", path),
        )

    def evidence(self, path: str, items: JSONObject) -> str:
        """A body holding only ``items`` (with the value's envelope), as canonical JSON."""
        value: JSONObject = {
            k: self.value[k] for k in ("messaging_product", "metadata") if k in self.value
        }
        entry = {"id": self.entry["id"], "changes": [{"field": self.field, "value": value}]}
        if "time" in self.entry:
            entry["time"] = self.entry["time"]
        value.update(items)
        return canonical({"object": WABA_OBJECT, "entry": [entry]}, path)

    def digest(self, path: str, item: object) -> str:
        """SHA-256 of an id-less item, with the account and business number it came from."""
        where = {"entry": self.waba_id, "field": self.field}
        if isinstance(self.value.get("metadata"), dict):
            where["phone_number_id"] = str(self.value["metadata"].get("phone_number_id"))
        item_json = canonical({"item": item, "where": where}, path)
        return hashlib.sha256(item_json.encode()).hexdigest()


class _Parser:
    def __init__(self, keywords: Keywords) -> None:
        self.keywords = keywords
        self.signals: list[AnySignal] = []
        self.problems: list[Problem] = []
        self.ignored: list[Ignored] = []

    def guard(
        self,
        path: str,
        read: Callable[Concatenate[str, _P], None],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> None:
        """Read one item; if it is malformed, record the problem and go on with the rest."""
        try:
            read(path, *args, **kwargs)
        except MalformedError as e:
            self.problems.append(Problem(e.path, e.message))

    def ignore(self, path: str, reason: str) -> None:
        self.ignored.append(Ignored(path, reason))

    def read_body(self, body: object) -> None:
        if not isinstance(body, dict):
            msg = f"not a webhook body: expected a JSON object, got {type_name(body)}"
            self.problems.append(Problem("", msg))
        elif (kind := body.get("object")) != WABA_OBJECT:
            self.problems.append(Problem("object", f"expected {WABA_OBJECT!r}, got {kind!r}"))
        else:
            self.guard("", self.read_entries, body)

    def read_entries(self, path: str, body: JSONObject) -> None:
        for i, entry in enumerate(array(body, "entry", path)):
            self.guard(f"entry[{i}]", self.read_entry, entry)

    def read_entry(self, path: str, entry: object) -> None:
        entry = as_object(entry, path)
        waba_id = string(entry, "id", path)
        for j, change in enumerate(array(entry, "changes", path)):
            self.guard(f"{path}.changes[{j}]", self.read_change, waba_id, entry, change)

    def read_change(self, path: str, waba_id: str, entry: JSONObject, change: object) -> None:
        change = as_object(change, path)
        name = string(change, "field", path)
        value = as_object(required(change, "value", path), f"{path}.value")
        context = _Change(waba_id, entry, name, value, f"{path}.value")
        match name:
            case "messages":
                self.read_messages(context)
            case "user_preferences":
                self.read_preferences(context)
            case "template_category_update":
                self.read_template_update(context)
            case _:
                self.ignore(path, f"field {name!r} carries no consent signal")

    # messages: inbound messages and statuses.

    def read_messages(self, change: _Change) -> None:
        messages = optional_array(change.value, "messages", change.path)
        statuses = optional_array(change.value, "statuses", change.path)
        if not messages and not statuses:
            self.ignore(change.path, "no messages or statuses")
            return
        sender = change.sender()
        contacts = optional_array(change.value, "contacts", change.path)
        for k, message in enumerate(messages):
            path = f"{change.path}.messages[{k}]"
            self.guard(path, self.read_message, change, sender, contacts, message)
        for k, status in enumerate(statuses):
            path = f"{change.path}.statuses[{k}]"
            self.guard(path, self.read_status, change, sender, contacts, status)

    def read_message(
        self,
        path: str,
        change: _Change,
        sender: BusinessNumber,
        contacts: list[Any],
        message: object,
    ) -> None:
        message = as_object(message, path)
        message_id = string(message, "id", path)
        occurred_at = unix_time(message, "timestamp", path)
        message_type = string(message, "type", path)
        user, contact = sender_of(message, contacts, path, change.path)
        items = {"messages": [message]} | ({"contacts": [contact]} if contact else {})
        evidence = change.evidence(path, items)
        if message_type == "system":
            self.read_system_message(
                path, change, message, sender=sender, user=user, evidence=evidence
            )
            return
        reply_text, payload = reply_of(message, message_type, path)
        if message_type == "text" and reply_text is not None:
            keyword = self.keywords.classify(reply_text, region=user.region)
        else:
            keyword = self.keywords.classify_button(payload, reply_text, region=user.region)
        context = message.get("context")
        replied_to = (
            optional_string(context, "id", f"{path}.context") if isinstance(context, dict) else None
        )
        self.signals.append(
            InboundMessage(
                idempotency_key=f"message:{message_id}",
                path=path,
                waba_id=change.waba_id,
                evidence=evidence,
                message_id=message_id,
                sender=sender,
                user=user,
                occurred_at=occurred_at,
                message_type=message_type,
                text=reply_text,
                button_payload=payload,
                context_message_id=replied_to,
                keyword=keyword,
            )
        )

    def read_system_message(  # noqa: PLR0913 (the message and everything around it)
        self,
        path: str,
        change: _Change,
        message: JSONObject,
        *,
        sender: BusinessNumber,
        user: WhatsAppUser,
        evidence: str,
    ) -> None:
        system = as_object(required(message, "system", path), f"{path}.system")
        kind = optional_string(system, "type", f"{path}.system")
        if kind in _IDENTITY_CHANGES:
            previous, now = new_identity(
                system, user, f"{path}.system", number_changed=kind == "user_changed_number"
            )
            self.signals.append(
                IdentityChanged(
                    idempotency_key=f"message:{string(message, 'id', path)}",
                    path=path,
                    waba_id=change.waba_id,
                    evidence=evidence,
                    change=_IDENTITY_CHANGES[kind],
                    message_id=string(message, "id", path),
                    sender=sender,
                    user=previous,
                    new_user=now,
                    occurred_at=unix_time(message, "timestamp", path),
                    detail=optional_text(system, "body", f"{path}.system"),
                )
            )
            return
        if kind != "user_preference_changed":
            self.ignore(path, f"system message {kind!r} carries no consent signal")
            return
        self.signals.append(
            MarketingPreference(
                idempotency_key=f"message:{string(message, 'id', path)}",
                path=path,
                waba_id=change.waba_id,
                evidence=evidence,
                action=preference_action(system, "marketing", f"{path}.system"),
                sender=sender,
                user=user,
                occurred_at=unix_time(message, "timestamp", path),
                detail=optional_text(system, "body", f"{path}.system"),
                message_id=string(message, "id", path),
            )
        )

    def read_status(
        self,
        path: str,
        change: _Change,
        sender: BusinessNumber,
        contacts: list[Any],
        status: object,
    ) -> None:
        status = as_object(status, path)
        message_id = string(status, "id", path)
        state = string(status, "status", path)
        errors = optional_array(status, "errors", path)
        if not errors:
            self.ignore(path, f"status {state!r} without errors carries no consent signal")
            return
        occurred_at = unix_time(status, "timestamp", path)
        recipient, contact = recipient_of(status, contacts, path, change.path)
        items = {"statuses": [status]} | ({"contacts": [contact]} if contact else {})
        evidence = change.evidence(path, items)
        callback = optional_string(status, "biz_opaque_callback_data", path)
        for e, error in enumerate(errors):
            try:
                read = error_item(error, f"{path}.errors[{e}]")
            except MalformedError as problem:
                self.problems.append(Problem(problem.path, problem.message))
                continue
            self.signals.append(
                DeliveryError(
                    idempotency_key=f"status:{message_id}:{state}:{read.code}",
                    path=path,
                    waba_id=change.waba_id,
                    evidence=evidence,
                    message_id=message_id,
                    sender=sender,
                    recipient=recipient,
                    occurred_at=occurred_at,
                    status=state,
                    code=read.code,
                    kind=DELIVERY_SIGNALS.get(read.code, DeliverySignal.OTHER),
                    title=read.title,
                    message=read.message,
                    details=read.details,
                    callback_data=callback,
                )
            )

    # user_preferences.

    def read_preferences(self, change: _Change) -> None:
        preferences = array(change.value, "user_preferences", change.path)
        sender = change.sender()
        contacts = optional_array(change.value, "contacts", change.path)
        for k, preference in enumerate(preferences):
            path = f"{change.path}.user_preferences[{k}]"
            self.guard(path, self.read_preference, change, sender, contacts, preference)

    def read_preference(
        self,
        path: str,
        change: _Change,
        sender: BusinessNumber,
        contacts: list[Any],
        preference: object,
    ) -> None:
        preference = as_object(preference, path)
        category = string(preference, "category", path)
        if category != MARKETING_MESSAGES:
            self.ignore(path, f"preference category {category!r} is not read (only marketing)")
            return
        action = preference_action(preference, "value", path)
        occurred_at = unix_time(preference, "timestamp", path)
        user, contact = person(
            path,
            change.path,
            contacts,
            wa_id=optional_string(preference, "wa_id", path),
            bsuid=optional_string(preference, "user_id", path),
            parent_bsuid=optional_string(preference, "parent_user_id", path),
            phone=None,
            what="'wa_id' or 'user_id'",
        )
        items = {"user_preferences": [preference]} | ({"contacts": [contact]} if contact else {})
        self.signals.append(
            MarketingPreference(
                idempotency_key=f"user_preferences:{change.digest(path, preference)}",
                path=path,
                waba_id=change.waba_id,
                evidence=change.evidence(path, items),
                action=action,
                sender=sender,
                user=user,
                occurred_at=occurred_at,
                category=category,
                detail=optional_text(preference, "detail", path),
            )
        )

    # template_category_update.

    def read_template_update(self, change: _Change) -> None:
        value, path = change.value, change.path
        previous: str | None
        if "previous_category" in value:
            stage = CategoryUpdateStage.COMPLETED
            previous = string(value, "previous_category", path)
            new = string(value, "new_category", path)
            effective_at = None
        elif "correct_category" in value:
            stage = CategoryUpdateStage.IMPENDING
            previous = optional_string(value, "new_category", path)  # the current one
            new = string(value, "correct_category", path)
            effective_at = (
                unix_time(value, "category_update_timestamp", path)
                if value.get("category_update_timestamp") is not None
                else None
            )
        else:
            msg = (
                "neither 'previous_category' (a completed change) nor 'correct_category' "
                "(an impending one)"
            )
            raise MalformedError(path, msg)
        entry_path = path.rsplit(".changes[", 1)[0]
        self.signals.append(
            TemplateCategoryUpdate(
                idempotency_key=f"template_category_update:{change.digest(path, value)}",
                path=path.removesuffix(".value"),
                waba_id=change.waba_id,
                evidence=change.evidence(path, value),
                template_id=string(value, "message_template_id", path),
                template_name=string(value, "message_template_name", path),
                template_language=string(value, "message_template_language", path),
                stage=stage,
                previous_category=previous,
                new_category=new,
                effective_at=effective_at,
                occurred_at=unix_time(change.entry, "time", entry_path)
                if change.entry.get("time") is not None
                else None,
            )
        )
