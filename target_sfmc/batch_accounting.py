"""Accounting for one loaded batch: every outcome counted and dead-lettered, refusals logged.

A batch whose rows SFMC refused fails the run unless ``row_error_policy`` is ``skip``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from target_sfmc.errors import RowsRejectedError, without_quoted_values
from target_sfmc.mapping import CONTACT_KEY
from target_sfmc.records import CONTACT_REFUSED, REJECTED, DataExtensionRow, JourneyExit

if TYPE_CHECKING:
    import logging

    from target_sfmc.accounting import RunReport
    from target_sfmc.records import JourneyEvent, LoadResult
    from target_sfmc.sink_batch import Batch

_REJECTIONS_LOGGED_PER_BATCH = 5


def account_batch(
    batch: Batch,
    result: LoadResult,
    *,
    stream: str,
    report: RunReport,
    skip_rejected_rows: bool,
    logger: logging.Logger,
) -> None:
    """Count and dead-letter every outcome of the batch; fail when the policy says so.

    Args:
        batch: The batch, with what mapping refused or skipped.
        result: What SFMC made of the batch's rows, events and exits.
        stream: The stream's name.
        report: The run's report (counters and dead letters).
        skip_rejected_rows: ``row_error_policy`` is ``skip``.
        logger: The stream's logger, for the first refusals.

    Raises:
        RowsRejectedError: When rows were rejected and ``row_error_policy`` is ``fail``.
    """
    rejected, extra_rejected, extra_skipped = 0, 0, 0
    letters: list[dict[str, Any]] = []
    for skip in batch.skipped:
        if skip.secondary:
            extra_skipped += 1
        else:
            report.count_skip(stream, skip.reason)
        letters.append(report.dead_letter_entry(stream, skip.destination, skip.reason, skip.row))
    messages: list[str] = []
    for refusal in batch.refused:
        # a second delivery (a Segment track's Journey event) is counted apart
        extra_rejected += refusal.secondary
        rejected += not refusal.secondary
        messages.append(refusal.message)
        letters.append(
            report.dead_letter_entry(
                stream, refusal.destination, REJECTED, refusal.row, refusal.message, "mapping"
            )
        )
    for rejection in result.rejected:
        item = rejection.item
        if isinstance(item, DataExtensionRow):
            rejected += item.records
        elif item.secondary:
            extra_rejected += 1
        else:
            rejected += 1
        destination, row = _refused_row(item)
        messages.append(rejection.message)
        letters.append(
            report.dead_letter_entry(
                stream, destination, REJECTED, row, rejection.message, rejection.error_code
            )
        )
    letters.extend(
        report.dead_letter_entry(
            stream,
            getattr(contact.item, "data_extension_key", None),
            CONTACT_REFUSED,
            {CONTACT_KEY: contact.item.contact_key},
            contact.message,
            contact.error_code,
        )
        for contact in result.contacts_refused
    )
    report.count(
        stream,
        contacts_failed=len(result.contacts_refused),
        written=result.written,
        merged=result.merged,
        deleted=result.deleted,
        rejected=rejected,
        extra_written=result.extra_written,
        extra_rejected=extra_rejected,
        extra_skipped=extra_skipped,
    )
    report.dead_letter(letters)
    if not messages:
        return
    # SFMC's messages can quote values (a Contact Key, a duplicate key): the log gets
    # them with quoted parts hidden; the dead-letter file keeps them whole.
    for message in messages[:_REJECTIONS_LOGGED_PER_BATCH]:
        logger.warning("Row rejected: %s", without_quoted_values(message))
    if not skip_rejected_rows:
        raise RowsRejectedError(
            f"{rejected + extra_rejected} record(s) of stream '{stream}' were rejected "
            f"(first: {without_quoted_values(messages[0])}); "
            "state was not advanced past them. Fix the data or Data Extension, or set "
            "row_error_policy to 'skip'."
        )


def _refused_row(item: DataExtensionRow | JourneyEvent | JourneyExit) -> tuple[str, Any]:
    """Where a refused item was going, and what its dead letter shows."""
    if isinstance(item, DataExtensionRow):
        return item.data_extension_key, {**item.values, **item.keys}
    if isinstance(item, JourneyExit):
        return item.journey_key, {"ContactKey": item.contact_key}
    return item.event_definition_key, {"ContactKey": item.contact_key, "Data": item.data}
