"""Parameter types for the ledger's own vocabulary: a value that is none is a usage error."""

from __future__ import annotations

from typing import Any

import click

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.commands import NoticeSelector


class NoticeType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """A notice as commands name it: ``ID@VERSION``, or ``ID`` for the latest version."""

    name = "ID[@VERSION]"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> NoticeSelector:
        """The notice selector, or a usage error if the version is no version."""
        if isinstance(value, NoticeSelector):
            return value
        try:
            return NoticeSelector.parse(str(value))
        except InvalidInputError as e:
            self.fail(str(e), param, ctx)


NOTICE = NoticeType()
