"""Parameter types for the ledger's own vocabulary: an unknown value is a usage error.

A typo in a filter or a category used to read as an empty answer ("no events match",
nobody in the audience, exit 0). These types refuse it and name the values that exist.
A category is the exception: which ones exist depends on the business (its own beside
the built-in ones), so the type refuses only a malformed name, and the ledger an unknown one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from consent_ledger.exceptions import ConsentLedgerError, InvalidInputError
from consent_ledger.model.taxonomy import Channel, check_category_name
from consent_ledger.sending.eligibility import policies, policy_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from consent_ledger.cli._options import F

    from consent_ledger.model.commands import NoticeSelector


class CategoryType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """One category's name (``offers``, ``loyalty-points``, ...): built in or a business's own."""

    name = "CATEGORY"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The name, or a usage error if it cannot name a category.

        Whether the business has it is the ledger's to say, naming the ones it has.
        """
        text = str(value)
        if "," in text:
            self.fail(f"give one category, not a list ({text!r})", param, ctx)
        try:
            check_category_name(text)
        except InvalidInputError as e:
            self.fail(str(e), param, ctx)
        return text


CATEGORY = CategoryType()


def _only_one(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> str | None:
    """The one category given; more than one is a usage error, not the last one kept."""
    if len(values) > 1:
        msg = f"give one category ({', '.join(values)} given): a message is of one category"
        raise click.BadParameter(msg, ctx, param)
    return values[0] if values else None


def one_category_option(help_text: str) -> Callable[[F], F]:
    """``--category``/``-c``: one category; repeating the option is refused.

    Click keeps the last of a repeated single-value option; a check or an audience of
    the wrong category would then pass for an answer to the command line given.
    """
    return click.option(
        "--category",
        "-c",
        "category",
        type=CATEGORY,
        multiple=True,
        callback=_only_one,
        help=help_text,
    )


class NoticeType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """A notice as commands name it: ``ID@VERSION``, or ``ID`` for the latest version."""

    name = "ID[@VERSION]"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> NoticeSelector:
        """The notice selector, or a usage error if the version is no version."""
        # Imported here: the commands' models load pydantic, which a check never needs.
        from consent_ledger.model.commands import NoticeSelector  # noqa: PLC0415

        if isinstance(value, NoticeSelector):
            return value
        try:
            return NoticeSelector.parse(str(value))
        except InvalidInputError as e:
            self.fail(str(e), param, ctx)


NOTICE = NoticeType()

CHANNEL_FILTER = click.Choice([*(c.value for c in Channel), "*"])
"""A channel to filter events by; ``*`` picks opt-outs from every channel."""


class PolicyType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """A policy preset's name, or the path of a policy file (``.json``), read and checked."""

    name = "PRESET|FILE.json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The name or path, once the policy is known to be a valid one."""
        text = str(value)
        if text.endswith(".json"):
            try:
                policy_file(text)
            except ConsentLedgerError as e:
                self.fail(str(e), param, ctx)
            return text
        if text not in policies():
            self.fail(f"unknown policy {text!r}; presets: {', '.join(policies())}", param, ctx)
        return text


POLICY = PolicyType()
