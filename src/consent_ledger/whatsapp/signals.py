"""What a WhatsApp webhook says that the ledger may act on: typed, validated signals.

:func:`consent_ledger.whatsapp.parser.parse` reads Meta's webhook bodies into these:

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
- :class:`IdentityChanged`: the person changed their number, or their business-scoped user id
  changed (``system`` messages ``user_changed_number`` and ``user_changed_user_id``).

Each signal has an :attr:`~Signal.idempotency_key` and its :attr:`~Signal.evidence` (the
canonical JSON of a body holding only its item); the parser's module says how both are made.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.values import Immutable
from consent_ledger.whatsapp.keywords import Keyword

MARKETING_MESSAGES = "marketing_messages"


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

    @property
    def region(self) -> str | None:
        """The person's country (ISO 3166), from their number, WhatsApp id or BSUID."""
        return next(filter(None, (i.region for i in self.identifiers())), None)

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


class IdentityChange(StrEnum):
    """Which of a person's WhatsApp identifiers changed (a ``system`` message's type)."""

    NUMBER = "number"
    """``user_changed_number``: a new phone number (and with it a new business-scoped id)."""
    USER_ID = "user-id"
    """``user_changed_user_id``: a new business-scoped user id, the number not shared."""


class IdentityChanged(Signal):
    """The person's WhatsApp number or business-scoped user id changed: one person, new names.

    ``user`` is the person as the ledger may know them (the old number, the previous
    user ids); ``new_user`` as they are known from now on.
    """

    signal: Literal["identity-changed"] = "identity-changed"
    change: IdentityChange
    message_id: str
    sender: BusinessNumber
    user: WhatsAppUser
    new_user: WhatsAppUser
    occurred_at: AwareDatetime
    detail: str | None = None


AnySignal = Annotated[
    InboundMessage | MarketingPreference | DeliveryError | TemplateCategoryUpdate | IdentityChanged,
    Field(discriminator="signal"),
]
"""Any signal, told apart by its ``signal`` field (for ``pydantic.TypeAdapter``)."""
