"""WhatsApp webhooks: Meta's bodies read into typed consent signals. Pure: no ledger calls.

Meta posts a body per batch of changes to a webhook::

    {"object": "whatsapp_business_account",
     "entry": [{"id": "<WABA_ID>", "changes": [{"field": "messages", "value": {...}}]}]}

:func:`parse` turns one body into :class:`Signal` values the ledger acts on:

- :class:`InboundMessage`: a message from a person. Every one (re)opens the customer service
  window; its :attr:`~InboundMessage.keyword` says whether it is an opt-out (STOP), an opt-in
  (START), a help request (HELP) or a possible opt-out for review (see
  :mod:`consent_ledger.whatsapp.keywords`).
- :class:`MarketingPreference`: the person stopped or resumed marketing from that business
  number in WhatsApp itself (``user_preferences``, category ``marketing_messages``).
- :class:`DeliveryError`: a send failed. 131050 is evidence of the platform marketing stop;
  131049, 131047 and 131026 are delivery signals, not consent changes (131026 may hide a
  block: an inferred signal, never an opt-out by itself).
- :class:`TemplateCategoryUpdate`: Meta will change, or changed, a template's category.

Reading rules:

- Unknown fields are ignored, and so are changes of fields that carry no consent signal
  (listed in :attr:`ParseResult.ignored` with the reason).
- A malformed item becomes a :class:`Problem` naming where it is
  (``entry[0].changes[1].value.messages[0]: no 'from' or 'from_user_id'``); the other items
  of the body still parse. A malformed envelope (no ``entry``) is one problem for the body.
- Signals come in the order of the body, each with its own time: nothing is sorted, so
  out-of-order deliveries keep the times they happened at.
- Each signal has an :attr:`~Signal.idempotency_key` (the wamid for messages and statuses;
  for the id-less ``user_preferences`` and ``template_category_update``, a SHA-256 of the
  canonical JSON of the item and where it came from), so a redelivered body is recognised.
  **It is personal data**: a wamid is base64 of a record that holds the person's phone number
  in clear, and a hash of a preference item can be brute-forced from the number. Store only a
  keyed hash of it (like the ledger's identifier lookups), never the key itself.
- Each signal's :attr:`~Signal.evidence` is the canonical JSON (sorted keys, no whitespace)
  of a webhook body that holds only that signal's item, with the change's ``metadata`` and
  the person's ``contacts`` entry: the raw payload to seal as the event's evidence, without
  the other people a batched body carries. It parses back to the same signal.

:func:`read_payloads` reads bodies from a file: JSON Lines, one JSON array of bodies, or a
single (pretty-printed) body, and reports each body's position.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, Literal, NamedTuple, ParamSpec, Self

import orjson
from pydantic import AwareDatetime, Field, model_validator

from consent_ledger.exceptions import InvalidIdentifierError
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.values import Immutable
from consent_ledger.whatsapp.keywords import Keyword, Keywords

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

_P = ParamSpec("_P")
WABA_OBJECT = "whatsapp_business_account"
MARKETING_MESSAGES = "marketing_messages"
_MAX_UNIX_TIME = 10**11  # year 5138: anything larger is not a time in seconds

JSONObject = dict[str, Any]


# Signals.


class BusinessNumber(Immutable):
    """The business phone number a change concerns: the sender, in the ledger's terms."""

    waba_id: str = Field(description="WhatsApp Business Account id (the entry's id)")
    phone_number_id: str
    display_phone_number: str | None = None


class WhatsAppUser(Immutable):
    """A person as a webhook names them; the ledger links every identifier to one subject.

    ``wa_id`` and ``phone`` may differ (WhatsApp ids of some countries are not the number as
    dialled); ``bsuid`` (business-scoped user id) may come alone once a person hides their
    number behind a username.
    """

    wa_id: str | None = None
    phone: str | None = Field(default=None, description="E.164, when the payload gives it")
    bsuid: str | None = None
    parent_bsuid: str | None = None

    @model_validator(mode="after")
    def _check_identified(self) -> Self:
        if self.wa_id is None and self.bsuid is None:
            msg = "a WhatsApp user needs a wa_id or a business-scoped user id"
            raise ValueError(msg)
        return self

    def identifiers(self) -> tuple[Identifier, ...]:
        """Every identifier the payload gave, most specific first: phone, wa_id, BSUIDs."""
        pairs = (
            (IdentifierKind.PHONE, self.phone),
            (IdentifierKind.WA, self.wa_id),
            (IdentifierKind.BSUID, self.bsuid),
            (IdentifierKind.BSUID, self.parent_bsuid),
        )
        return tuple(Identifier(kind, value) for kind, value in pairs if value is not None)


class Signal(Immutable):
    """Base of what a webhook body says that the ledger may act on."""

    idempotency_key: str = Field(
        description="same key, same signal; personal data: store only a keyed hash of it"
    )
    path: str = Field(description="where in the body the item is, e.g. entry[0].changes[1]...")
    waba_id: str
    evidence: str = Field(description="canonical JSON of a body holding only this item")


class InboundMessage(Signal):
    """A message a person sent to the business. It opens or refreshes the service window.

    ``keyword`` is set when its text (or button) is a keyword, including a possible opt-out
    (for review only); ``text`` is the text or button title that was classified.
    """

    signal: Literal["inbound-message"] = "inbound-message"
    message_id: str
    sender: BusinessNumber
    user: WhatsAppUser
    occurred_at: AwareDatetime
    message_type: str
    text: str | None = None
    button_payload: str | None = None
    context_message_id: str | None = Field(
        default=None, description="the business message it replies to (a button's template)"
    )
    keyword: Keyword | None = None


class PreferenceAction(StrEnum):
    """What a person did in WhatsApp's marketing preferences."""

    STOP = "stop"
    RESUME = "resume"


class MarketingPreference(Signal):
    """A person stopped or resumed marketing messages from one business number on WhatsApp."""

    signal: Literal["marketing-preference"] = "marketing-preference"
    action: PreferenceAction
    sender: BusinessNumber
    user: WhatsAppUser
    occurred_at: AwareDatetime
    category: str = MARKETING_MESSAGES
    detail: str | None = None
    message_id: str | None = Field(default=None, description="set when sent as a system message")

    @property
    def stopped(self) -> bool:
        """Whether marketing is stopped (True) or resumed (False)."""
        return self.action is PreferenceAction.STOP


class DeliverySignal(StrEnum):
    """What a delivery error says about the recipient."""

    MARKETING_STOPPED = "marketing-stopped"
    """131050: the person stopped marketing from the business (platform stop, evidence)."""
    MARKETING_LIMIT = "marketing-limit"
    """131049: per-user marketing limit reached; a delivery signal, not consent."""
    OUTSIDE_SERVICE_WINDOW = "outside-service-window"
    """131047: free-form message outside the 24-hour window."""
    UNDELIVERABLE = "undeliverable"
    """131026: undeliverable; may hide a block (inferred, never an opt-out by itself)."""
    SPAM_RATE_LIMIT = "spam-rate-limit"
    """131048: the sender's spam rate limit."""
    MARKETING_EXPERIMENT = "marketing-experiment"
    """130472: held back by Meta's marketing experiment."""
    OTHER = "other"


DELIVERY_SIGNALS = {
    131050: DeliverySignal.MARKETING_STOPPED,
    131049: DeliverySignal.MARKETING_LIMIT,
    131047: DeliverySignal.OUTSIDE_SERVICE_WINDOW,
    131026: DeliverySignal.UNDELIVERABLE,
    131048: DeliverySignal.SPAM_RATE_LIMIT,
    130472: DeliverySignal.MARKETING_EXPERIMENT,
}


class DeliveryError(Signal):
    """A message from the business failed, with one of Meta's error codes."""

    signal: Literal["delivery-error"] = "delivery-error"
    message_id: str = Field(description="wamid of the business's message that failed")
    sender: BusinessNumber
    recipient: WhatsAppUser
    occurred_at: AwareDatetime
    status: str
    code: int
    kind: DeliverySignal
    title: str | None = None
    message: str | None = None
    details: str | None = None
    callback_data: str | None = Field(
        default=None, description="biz_opaque_callback_data the business sent the message with"
    )

    @property
    def platform_marketing_stop(self) -> bool:
        """Whether it is evidence of a platform marketing stop (131050)."""
        return self.kind is DeliverySignal.MARKETING_STOPPED

    @property
    def inferred_block(self) -> bool:
        """Whether it may hide a block (131026): an inferred signal, never an opt-out."""
        return self.kind is DeliverySignal.UNDELIVERABLE


class CategoryUpdateStage(StrEnum):
    """Whether a template's category change is announced or done."""

    IMPENDING = "impending"
    COMPLETED = "completed"


class TemplateCategoryUpdate(Signal):
    """Meta will change (impending) or changed (completed) a template's category.

    ``previous_category`` and ``new_category`` mean before and after the change in both
    stages. (Meta's impending notice calls the current category ``new_category`` and the
    coming one ``correct_category``; they are read into the fields of the same meaning.)
    """

    signal: Literal["template-category-update"] = "template-category-update"
    template_id: str
    template_name: str
    template_language: str
    stage: CategoryUpdateStage
    previous_category: str | None
    new_category: str
    effective_at: AwareDatetime | None = Field(
        default=None, description="when an impending change takes effect"
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="when Meta sent the notice (the entry's time)"
    )


AnySignal = Annotated[
    InboundMessage | MarketingPreference | DeliveryError | TemplateCategoryUpdate,
    Field(discriminator="signal"),
]
"""Any signal, told apart by its ``signal`` field (for ``pydantic.TypeAdapter``)."""


# Results.


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


# Reading bodies from a file.


class Position(NamedTuple):
    """Where a body is in its input: its line, and its index in a JSON array."""

    line: int
    item: int | None = None

    def __str__(self) -> str:
        """``line 3``, or ``item 2 (line 5)`` in an array (items count from 0)."""
        if self.item is None:
            return f"line {self.line}"
        return f"item {self.item} (line {self.line})"


def read_payloads(lines: Iterable[str]) -> Iterator[tuple[Position, JSONObject | Problem]]:
    """Read webhook bodies from text: JSON Lines, one JSON array, or one multi-line body.

    The input is JSON Lines (one body per line; blank lines are skipped) unless it starts
    with ``[`` (a JSON array of bodies) or its first line is not JSON on its own but the
    whole input is one body (pretty-printed). A line that is not JSON, or a value that is
    not an object, is reported with its position and the rest is read on; in an array, a
    broken item ends the array (what follows cannot be found reliably).

    Args:
        lines: The input, line by line (an open text file, ``sys.stdin``).

    Yields:
        ``(position, body)`` or ``(position, problem)``, in input order.
    """
    source = iter(lines)
    head: list[str] = []
    for line in source:
        head.append(line)
        if line.strip():
            break
    else:
        return
    first_line = len(head)
    first = head[-1].lstrip().lstrip("\ufeff")
    if first.startswith("["):
        yield from _read_array("".join(head) + "".join(source))
        return
    try:
        value = _loads(first)
    except ValueError:
        rest = list(source)
        whole = "".join(head) + "".join(rest)
        try:
            value = _loads(whole.lstrip().lstrip("\ufeff"))
        except ValueError:
            yield from _read_lines(enumerate([*head, *rest], start=1))
            return
        yield Position(first_line), _as_body(value)
        return
    yield Position(first_line), _as_body(value)
    yield from _read_lines(enumerate(source, start=first_line + 1))


def _read_lines(numbered: Iterable[tuple[int, str]]) -> Iterator[tuple[Position, Any]]:
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            value = _loads(line.lstrip("\ufeff").rstrip("\r\n"))
        except ValueError as e:
            yield Position(number), Problem("", _not_json(e, one_line=True))
            continue
        yield Position(number), _as_body(value)


def _read_array(text: str) -> Iterator[tuple[Position, Any]]:
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    lines = _LineCounter(text)
    at = _skip_space(text, text.index("[") + 1)
    index = 0
    if text.startswith("]", at):
        at += 1
    else:
        while True:
            line = lines.at(at)
            try:
                value, at = decoder.raw_decode(text, at)
            except (ValueError, RecursionError) as e:
                msg = f"{_not_json(e)}; the rest of the array cannot be read"
                yield Position(line, index), Problem("", msg)
                return
            yield Position(line, index), _as_body(value)
            index += 1
            at = _skip_space(text, at)
            if text.startswith(",", at):
                at = _skip_space(text, at + 1)
                continue
            if text.startswith("]", at):
                at += 1
                break
            msg = "not JSON: expected ',' or ']' after an item of the array"
            yield Position(lines.at(at), index), Problem("", msg)
            return
    if text[at:].strip():
        yield Position(lines.at(at)), Problem("", "not JSON: text after the end of the array")


class _LineCounter:
    """Line numbers of offsets in a text, for offsets that only grow (linear, not quadratic)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        msg = "nested too deeply"
        raise ValueError(msg) from None


def _not_json(error: BaseException, *, one_line: bool = False) -> str:
    if isinstance(error, json.JSONDecodeError):
        where = "" if one_line else f"line {error.lineno}, "
        return f"not JSON: {error.msg} ({where}column {error.colno})"
    if isinstance(error, RecursionError):
        return "not JSON: nested too deeply"
    return f"not JSON: {error}"


def _as_body(value: Any) -> JSONObject | Problem:
    if isinstance(value, dict):
        return value
    return Problem("", f"not a webhook body: expected a JSON object, got {_type_name(value)}")


# The parser.


class _MalformedError(Exception):
    """An item of a body cannot be read; caught per item."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


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
        metadata = _object(_required(self.value, "metadata", self.path), path)
        return BusinessNumber(
            waba_id=self.waba_id,
            phone_number_id=_string(metadata, "phone_number_id", path),
            display_phone_number=_optional_string(metadata, "display_phone_number", path),
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
        return _canonical({"object": WABA_OBJECT, "entry": [entry]}, path)

    def digest(self, path: str, item: object) -> str:
        """SHA-256 of an id-less item, with the account and business number it came from."""
        where = {"entry": self.waba_id, "field": self.field}
        if isinstance(self.value.get("metadata"), dict):
            where["phone_number_id"] = str(self.value["metadata"].get("phone_number_id"))
        text = _canonical({"item": item, "where": where}, path)
        return hashlib.sha256(text.encode()).hexdigest()


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
        except _MalformedError as e:
            self.problems.append(Problem(e.path, e.message))

    def ignore(self, path: str, reason: str) -> None:
        self.ignored.append(Ignored(path, reason))

    def read_body(self, body: object) -> None:
        if not isinstance(body, dict):
            msg = f"not a webhook body: expected a JSON object, got {_type_name(body)}"
            self.problems.append(Problem("", msg))
        elif (kind := body.get("object")) != WABA_OBJECT:
            self.problems.append(Problem("object", f"expected {WABA_OBJECT!r}, got {kind!r}"))
        else:
            self.guard("", self.read_entries, body)

    def read_entries(self, path: str, body: JSONObject) -> None:
        for i, entry in enumerate(_array(body, "entry", path)):
            self.guard(f"entry[{i}]", self.read_entry, entry)

    def read_entry(self, path: str, entry: object) -> None:
        entry = _object(entry, path)
        waba_id = _string(entry, "id", path)
        for j, change in enumerate(_array(entry, "changes", path)):
            self.guard(f"{path}.changes[{j}]", self.read_change, waba_id, entry, change)

    def read_change(self, path: str, waba_id: str, entry: JSONObject, change: object) -> None:
        change = _object(change, path)
        name = _string(change, "field", path)
        value = _object(_required(change, "value", path), f"{path}.value")
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
        messages = _optional_array(change.value, "messages", change.path)
        statuses = _optional_array(change.value, "statuses", change.path)
        if not messages and not statuses:
            self.ignore(change.path, "no messages or statuses")
            return
        sender = change.sender()
        contacts = _optional_array(change.value, "contacts", change.path)
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
        message = _object(message, path)
        message_id = _string(message, "id", path)
        occurred_at = _time(message, "timestamp", path)
        message_type = _string(message, "type", path)
        user, contact = _sender_of(message, contacts, path, change.path)
        items = {"messages": [message]} | ({"contacts": [contact]} if contact else {})
        evidence = change.evidence(path, items)
        if message_type == "system":
            self.read_system_message(
                path, change, message, sender=sender, user=user, evidence=evidence
            )
            return
        text, payload = _reply(message, message_type, path)
        if message_type == "text" and text is not None:
            keyword = self.keywords.classify(text)
        else:
            keyword = self.keywords.classify_button(payload, text)
        context = message.get("context")
        replied_to = (
            _optional_string(context, "id", f"{path}.context")
            if isinstance(context, dict)
            else None
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
                text=text,
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
        system = _object(_required(message, "system", path), f"{path}.system")
        kind = _optional_string(system, "type", f"{path}.system")
        if kind != "user_preference_changed":
            self.ignore(path, f"system message {kind!r} is not read yet (identity changes)")
            return
        self.signals.append(
            MarketingPreference(
                idempotency_key=f"message:{_string(message, 'id', path)}",
                path=path,
                waba_id=change.waba_id,
                evidence=evidence,
                action=_action(system, "marketing", f"{path}.system"),
                sender=sender,
                user=user,
                occurred_at=_time(message, "timestamp", path),
                detail=_optional_text(system, "body", f"{path}.system"),
                message_id=_string(message, "id", path),
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
        status = _object(status, path)
        message_id = _string(status, "id", path)
        state = _string(status, "status", path)
        errors = _optional_array(status, "errors", path)
        if not errors:
            self.ignore(path, f"status {state!r} without errors carries no consent signal")
            return
        occurred_at = _time(status, "timestamp", path)
        recipient, contact = _recipient_of(status, contacts, path, change.path)
        items = {"statuses": [status]} | ({"contacts": [contact]} if contact else {})
        evidence = change.evidence(path, items)
        callback = _optional_string(status, "biz_opaque_callback_data", path)
        for e, error in enumerate(errors):
            try:
                read = _error(error, f"{path}.errors[{e}]")
            except _MalformedError as problem:
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
        preferences = _array(change.value, "user_preferences", change.path)
        sender = change.sender()
        contacts = _optional_array(change.value, "contacts", change.path)
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
        preference = _object(preference, path)
        category = _string(preference, "category", path)
        if category != MARKETING_MESSAGES:
            self.ignore(path, f"preference category {category!r} is not read (only marketing)")
            return
        action = _action(preference, "value", path)
        occurred_at = _time(preference, "timestamp", path)
        user, contact = _person(
            path,
            change.path,
            contacts,
            wa_id=_optional_string(preference, "wa_id", path),
            bsuid=_optional_string(preference, "user_id", path),
            parent_bsuid=_optional_string(preference, "parent_user_id", path),
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
                detail=_optional_text(preference, "detail", path),
            )
        )

    # template_category_update.

    def read_template_update(self, change: _Change) -> None:
        value, path = change.value, change.path
        previous: str | None
        if "previous_category" in value:
            stage = CategoryUpdateStage.COMPLETED
            previous = _string(value, "previous_category", path)
            new = _string(value, "new_category", path)
            effective_at = None
        elif "correct_category" in value:
            stage = CategoryUpdateStage.IMPENDING
            previous = _optional_string(value, "new_category", path)  # the current one
            new = _string(value, "correct_category", path)
            effective_at = (
                _time(value, "category_update_timestamp", path)
                if value.get("category_update_timestamp") is not None
                else None
            )
        else:
            msg = (
                "neither 'previous_category' (a completed change) nor 'correct_category' "
                "(an impending one)"
            )
            raise _MalformedError(path, msg)
        entry_path = path.rsplit(".changes[", 1)[0]
        self.signals.append(
            TemplateCategoryUpdate(
                idempotency_key=f"template_category_update:{change.digest(path, value)}",
                path=path.removesuffix(".value"),
                waba_id=change.waba_id,
                evidence=change.evidence(path, value),
                template_id=_string(value, "message_template_id", path),
                template_name=_string(value, "message_template_name", path),
                template_language=_string(value, "message_template_language", path),
                stage=stage,
                previous_category=previous,
                new_category=new,
                effective_at=effective_at,
                occurred_at=_time(change.entry, "time", entry_path)
                if change.entry.get("time") is not None
                else None,
            )
        )


class _Error(NamedTuple):
    code: int
    title: str | None
    message: str | None
    details: str | None


def _error(error: object, path: str) -> _Error:
    """One of a status's ``errors``: code, title, message, ``error_data.details``."""
    error = _object(error, path)
    data = error.get("error_data")
    return _Error(
        code=_integer(error, "code", path),
        title=_optional_text(error, "title", path),
        message=_optional_text(error, "message", path),
        details=_optional_text(data, "details", f"{path}.error_data")
        if isinstance(data, dict)
        else None,
    )


def _reply(message: JSONObject, message_type: str, path: str) -> tuple[str | None, str | None]:
    """The text to classify and the button payload (or id) of a message, if it has them."""
    match message_type:
        case "text":
            text = _object(_required(message, "text", path), f"{path}.text")
            return _text(text, "body", f"{path}.text"), None
        case "button":
            button = _object(_required(message, "button", path), f"{path}.button")
            title = _optional_text(button, "text", f"{path}.button")
            payload = _optional_text(button, "payload", f"{path}.button")
            if title is None and payload is None:
                where = f"{path}.button"
                raise _MalformedError(where, "no 'text' or 'payload'")
            return title, payload
        case "interactive":
            interactive = _object(_required(message, "interactive", path), f"{path}.interactive")
            kind = _optional_string(interactive, "type", f"{path}.interactive")
            if kind in {"button_reply", "list_reply"}:
                reply_path = f"{path}.interactive.{kind}"
                reply = _object(_required(interactive, kind, f"{path}.interactive"), reply_path)
                return (
                    _optional_text(reply, "title", reply_path),
                    _optional_text(reply, "id", reply_path),
                )
            return None, None
        case _:
            return None, None


def _sender_of(
    message: JSONObject, contacts: list[Any], path: str, value_path: str
) -> tuple[WhatsAppUser, JSONObject | None]:
    sent_from = _optional_string(message, "from", path)
    return _person(
        path,
        value_path,
        contacts,
        wa_id=sent_from,
        bsuid=_optional_string(message, "from_user_id", path),
        parent_bsuid=_optional_string(message, "from_parent_user_id", path),
        phone=sent_from,
        what="'from' or 'from_user_id'",
    )


def _recipient_of(
    status: JSONObject, contacts: list[Any], path: str, value_path: str
) -> tuple[WhatsAppUser, JSONObject | None]:
    recipient = _optional_string(status, "recipient_id", path)
    bsuid = _optional_string(status, "recipient_user_id", path)
    if recipient is not None and _looks_like_bsuid(recipient):  # a send to a BSUID
        recipient, bsuid = None, bsuid or recipient
    return _person(
        path,
        value_path,
        contacts,
        wa_id=recipient,
        bsuid=bsuid,
        parent_bsuid=_optional_string(status, "recipient_parent_user_id", path),
        phone=None,
        what="'recipient_id' or 'recipient_user_id'",
    )


def _person(  # noqa: PLR0913 (every way a payload names a person)
    path: str,
    value_path: str,
    contacts: list[Any],
    *,
    wa_id: str | None,
    bsuid: str | None,
    parent_bsuid: str | None,
    phone: str | None,
    what: str,
) -> tuple[WhatsAppUser, JSONObject | None]:
    """The person an item names, completed from the change's ``contacts`` entry for them."""
    if wa_id is None and bsuid is None:
        raise _MalformedError(path, f"no {what}: whose is it?")
    found = _contact_for(contacts, wa_id, bsuid)
    contact: JSONObject | None = None
    if found is not None:
        index, contact = found
        contact_path = f"{value_path}.contacts[{index}]"
        wa_id = _optional_string(contact, "wa_id", contact_path) or wa_id
        bsuid = bsuid or _optional_string(contact, "user_id", contact_path)
        parent_bsuid = parent_bsuid or _optional_string(contact, "parent_user_id", contact_path)
    user = WhatsAppUser(
        wa_id=_identifier(IdentifierKind.WA, wa_id, path),
        phone=_phone(phone),
        bsuid=_identifier(IdentifierKind.BSUID, bsuid, path),
        parent_bsuid=_identifier(IdentifierKind.BSUID, parent_bsuid, path),
    )
    return user, contact


def _contact_for(
    contacts: list[Any], wa_id: str | None, bsuid: str | None
) -> tuple[int, JSONObject] | None:
    """The contact entry of a person: by wa_id or BSUID, or the only entry there is."""
    entries = [(i, c) for i, c in enumerate(contacts) if isinstance(c, dict)]
    for index, contact in entries:
        if (wa_id is not None and str(contact.get("wa_id")) == wa_id) or (
            bsuid is not None and contact.get("user_id") == bsuid
        ):
            return index, contact
    # One contact per change is Meta's shape; its wa_id may differ from the number in 'from'.
    return entries[0] if len(contacts) == 1 and entries else None


def _identifier(kind: IdentifierKind, value: str | None, path: str) -> str | None:
    if value is None:
        return None
    try:
        return Identifier.parse(f"{kind}:{value}").value
    except InvalidIdentifierError as e:
        raise _MalformedError(path, str(e)) from None


def _phone(value: str | None) -> str | None:
    """E.164 of a number as webhooks write it (digits, no +), or None if it is none."""
    if value is None or not value.isdigit():
        return None
    try:
        return Identifier.parse("+" + value).value
    except InvalidIdentifierError:
        return None  # still known by its wa_id; an opt-out is never refused for this


def _looks_like_bsuid(value: str) -> bool:
    return "." in value and value[:2].isalpha()


def _action(item: JSONObject, key: str, path: str) -> PreferenceAction:
    value = _string(item, key, path)
    try:
        return PreferenceAction(value.lower())
    except ValueError:
        msg = f"{key!r} is {value!r}: expected 'stop' or 'resume'"
        raise _MalformedError(path, msg) from None


# Reading JSON values, with the path of what is wrong.


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _object(value: object, path: str) -> JSONObject:
    if not isinstance(value, dict):
        raise _MalformedError(path, f"expected an object, got {_type_name(value)}")
    return value


def _required(item: JSONObject, key: str, path: str) -> object:
    value = item.get(key)
    if value is None:
        raise _MalformedError(path, f"no {key!r}")
    return value


def _array(item: JSONObject, key: str, path: str) -> list[Any]:
    value = _required(item, key, path)
    if not isinstance(value, list):
        raise _MalformedError(path, f"{key!r} is {_type_name(value)}, not an array")
    return value


def _optional_array(item: JSONObject, key: str, path: str) -> list[Any]:
    return _array(item, key, path) if item.get(key) is not None else []


def _string(item: JSONObject, key: str, path: str) -> str:
    """An id-like value: a non-empty string, or a whole number (Meta writes some ids so)."""
    value = _required(item, key, path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _MalformedError(path, f"{key!r} is {_type_name(value)}, not a string")
    text = str(value)
    if not text.strip():
        raise _MalformedError(path, f"{key!r} is empty")
    return text


def _optional_string(item: JSONObject, key: str, path: str) -> str | None:
    return _string(item, key, path) if item.get(key) is not None else None


def _text(item: JSONObject, key: str, path: str) -> str:
    """A text a person or Meta wrote: any string, even blank."""
    value = _required(item, key, path)
    if not isinstance(value, str):
        raise _MalformedError(path, f"{key!r} is {_type_name(value)}, not a string")
    return value


def _optional_text(item: JSONObject, key: str, path: str) -> str | None:
    return _text(item, key, path) if item.get(key) is not None else None


def _integer(item: JSONObject, key: str, path: str) -> int:
    value = _required(item, key, path)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _MalformedError(path, f"{key!r} is {_type_name(value)}, not a whole number")
    return value


def _time(item: JSONObject, key: str, path: str) -> datetime:
    """A Unix time in seconds, as Meta writes it: a number, or digits in a string."""
    value = _required(item, key, path)
    seconds: int | None = None
    if isinstance(value, str) and value.isdigit():
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    if seconds is None or not 0 < seconds < _MAX_UNIX_TIME:
        raise _MalformedError(path, f"{key!r} is not a Unix time in seconds: {value!r}")
    return datetime.fromtimestamp(seconds, UTC)


def _canonical(value: object, path: str) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as e:
        raise _MalformedError(path, f"cannot be kept as evidence: {e}") from None
