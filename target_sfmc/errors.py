"""Exceptions with messages fit for a user: one sentence, no secrets, no record values."""

from __future__ import annotations

import re
from typing import Any

_QUOTED = re.compile(r"'[^']*'|\([^()]*\)")


def without_quoted_values(message: str) -> str:
    """Hide the quoted and parenthesised parts of an SFMC message (they can be row values).

    Args:
        message: SFMC's message, e.g. ``Contact 'ada@example.com' is not active.``

    Returns:
        ``Contact '…' is not active.``
    """
    return _QUOTED.sub(lambda m: "'…'" if m.group(0).startswith("'") else "(…)", message)


class TargetSfmcError(Exception):
    """Base class for errors that stop the run with a clear message."""


class SfmcApiError(TargetSfmcError):
    """SFMC answered a request with an error that retrying will not fix."""

    def __init__(
        self,
        *,
        endpoint: str,
        status: int,
        error_code: Any,
        message: str,
        additional_errors: list[Any] | None = None,
        context: str = "",
    ) -> None:
        """Create the error.

        Args:
            endpoint: Short name of the API call, e.g. ``rowset``.
            status: HTTP status.
            error_code: SFMC ``errorcode`` (or OAuth ``error``).
            message: SFMC's message.
            additional_errors: SFMC ``additionalErrors``.
            context: What was being loaded, e.g. ``data extension 'IDENTIFY' (stream users)``.
        """
        self.endpoint = endpoint
        self.status = status
        self.error_code = error_code
        self.sfmc_message = message
        self.additional_errors = additional_errors or []
        self.context = context
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        where = f" for {self.context}" if self.context else ""
        details = "; ".join(self._details())
        detail_text = f" ({details})" if details else ""
        return (
            f"SFMC rejected the {self.endpoint} request{where}: HTTP {self.status}, "
            f"error code {self.error_code}: {self.sfmc_message}{detail_text}"
        )

    def with_context(self, context: str) -> SfmcApiError:
        """Return a copy that names what was being loaded.

        Args:
            context: Description of the data extension / stream.

        Returns:
            A new error with the same details (this one when it already names its context,
            e.g. authentication).
        """
        if self.context:
            return self
        return SfmcApiError(
            endpoint=self.endpoint,
            status=self.status,
            error_code=self.error_code,
            message=self.sfmc_message,
            additional_errors=self.additional_errors,
            context=context,
        )

    @property
    def message_for_row(self) -> str:
        """SFMC's message as reported for a rejected row."""
        details = self._details()
        return "; ".join(details) if details else self.sfmc_message

    def _details(self) -> list[str]:
        # additionalErrors comes straight from SFMC's JSON: trust nothing about its items.
        return [
            str(item.get("message", ""))
            for item in self.additional_errors
            if isinstance(item, dict)
        ]


class RetriesExhaustedError(TargetSfmcError):
    """A transient failure kept happening after every allowed attempt."""


class RowsRejectedError(TargetSfmcError):
    """Rows were rejected and ``row_error_policy`` is ``fail``."""


class InputError(TargetSfmcError):
    """The Singer input is malformed."""
