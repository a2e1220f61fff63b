"""Deleting Data Extension rows by primary key, in order with the upserts of the same keys.

SFMC deletes rows only through its SOAP API: ``Delete`` of ``DataExtensionObject`` objects,
each naming the DE (``CustomerKey``) and every primary-key column. One request carries many
objects; SFMC answers with one status per object, in request order. A row that does not exist
counts as deleted, so a delete can be repeated safely (after a kill, a retry).

A stream that deletes wraps its loader in :class:`DeletingRowLoader`. The batch's rounds
keep per-key order (a delete and an upsert of one key are never in the same round); a round
holding deletes first lets every upsert sent before it finish, then deletes, and only then
do later rounds go out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from target_sfmc.errors import TargetSfmcError
from target_sfmc.loading.base import loading_errors_named
from target_sfmc.loading.concurrency import chunk_by_size, run_all
from target_sfmc.records import LoadResult, SfmcRejection
from target_sfmc.soap import PARTNER_API, child_text, local_name, xml_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor
    from xml.etree import ElementTree as ET

    from target_sfmc.client import SfmcClient
    from target_sfmc.loading.base import BatchLoad, PendingRows, RowLoader
    from target_sfmc.records import DataExtensionRow

# SFMC documents no limit; a few hundred objects and a few hundred KB per call are safe.
DELETE_OBJECTS_PER_REQUEST = 200
DELETE_BYTES_PER_REQUEST = 400_000
_DELETED = "OK"


def delete_object(key: str, keys: dict[str, Any]) -> bytes:
    """One ``DataExtensionObject`` of a ``DeleteRequest``.

    Args:
        key: The Data Extension's external key.
        keys: Primary-key column -> value (every primary-key column).

    Returns:
        The object's XML.
    """
    parts = "".join(
        f"<Key><Name>{xml_text(name)}</Name><Value>{xml_text(value)}</Value></Key>"
        for name, value in keys.items()
    )
    return (
        f'<Objects xsi:type="DataExtensionObject"><CustomerKey>{xml_text(key)}</CustomerKey>'
        f"<Keys>{parts}</Keys></Objects>"
    ).encode()


def delete_request(objects: list[bytes]) -> str:
    """The ``DeleteRequest`` element for these objects.

    Args:
        objects: Encoded objects (see :func:`delete_object`).

    Returns:
        The request's XML.
    """
    return (
        f'<DeleteRequest xmlns="{PARTNER_API}"><Options/>'
        f"{b''.join(objects).decode()}</DeleteRequest>"
    )


def object_statuses(answer: ET.Element, sent: int) -> list[tuple[bool, str, str | None] | None]:
    """Each object's outcome in a ``DeleteResponse``, in request order.

    Args:
        answer: The ``DeleteResponse`` element.
        sent: How many objects the request carried.

    Returns:
        Per object ``(deleted, message, error_code)``, or None where SFMC gave no status.

    Raises:
        TargetSfmcError: When SFMC refused the whole request.
    """
    statuses: list[tuple[bool, str, str | None] | None] = [None] * sent
    results = [element for element in answer if local_name(element.tag) == "Results"]
    for position, result in enumerate(results):
        ordinal = child_text(result, "OrdinalID")
        index = int(ordinal) if ordinal.isdigit() else position
        if 0 <= index < sent:
            code = child_text(result, "StatusCode")
            message = child_text(result, "StatusMessage") or code or "no status message"
            statuses[index] = (
                code.upper() == _DELETED,
                message,
                child_text(result, "ErrorCode") or None,
            )
    overall = child_text(answer, "OverallStatus")
    if not results and overall and overall.upper() != _DELETED:
        raise TargetSfmcError(f"SFMC refused the delete request: {overall}")
    return statuses


class RowDeleter:
    """Deletes a Data Extension's rows by primary key through SOAP and reads back each status."""

    def __init__(
        self,
        client: SfmcClient,
        executor: Executor,
        *,
        describe: Callable[[str], str],
        on_confirmed: Callable[[int], None],
    ) -> None:
        """Create the deleter.

        Args:
            client: SFMC client.
            executor: Shared pool for requests sent side by side.
            describe: Names a DE key for error messages (adds the stream).
            on_confirmed: Told how many rows SFMC confirmed deleted, as each delete finishes.
        """
        self.client = client
        self.executor = executor
        self.describe = describe
        self.on_confirmed = on_confirmed

    def delete(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        """Delete the rows with these keys; return once SFMC answered for every one.

        Args:
            key: Data Extension external key.
            rows: Rows to delete (their ``keys``), at most one per primary key.

        Returns:
            Deleted rows (a missing row counts as deleted) and refused ones.
        """
        result = LoadResult()
        sendable: list[DataExtensionRow] = []
        encoded: list[bytes] = []
        for row in rows:
            try:
                encoded.append(delete_object(key, row.keys))
            except ValueError as exc:
                result.rejected.append(SfmcRejection(row, str(exc), "mapping"))
                continue
            sendable.append(row)
        chunks = chunk_by_size(encoded, DELETE_OBJECTS_PER_REQUEST, DELETE_BYTES_PER_REQUEST)
        with loading_errors_named(self.describe(key)):
            for part in run_all(
                self.executor, lambda r: self._send(key, sendable, encoded, list(r)), chunks
            ):
                result.extend(part)
        self.on_confirmed(result.deleted)
        return result

    def _send(
        self, key: str, rows: list[DataExtensionRow], encoded: list[bytes], indexes: list[int]
    ) -> LoadResult:
        answer = self.client.soap_call(
            "Delete", delete_request([encoded[i] for i in indexes]), endpoint="soap_delete"
        )
        try:
            statuses = object_statuses(answer, len(indexes))
        except TargetSfmcError as exc:
            raise TargetSfmcError(f"{exc} (deleting rows of {self.describe(key)})") from None
        missing = sum(status is None for status in statuses)
        if missing:
            raise TargetSfmcError(
                f"SFMC gave no status for {missing} of {len(indexes)} deletes in "
                f"{self.describe(key)}; rerun from the last state: deletes are idempotent."
            )
        result = LoadResult()
        for index, status in zip(indexes, statuses, strict=True):
            if status is None:  # ruled out above
                continue
            deleted, message, code = status
            if deleted:
                result.confirm((rows[index],))
            else:
                result.rejected.append(SfmcRejection(rows[index], message, code))
        return result


def split_deletes(rows: PendingRows) -> tuple[PendingRows, list[DataExtensionRow]]:
    """Separate a round's upserts from its deletes (their keys all differ).

    Args:
        rows: A Data Extension's rows of one round.

    Returns:
        The upserts, and the rows to delete.
    """
    upserts: PendingRows = {}
    deletes: list[DataExtensionRow] = []
    for primary_key, row in rows.items():
        if row.delete:
            deletes.append(row)
        else:
            upserts[primary_key] = row
    return upserts, deletes


class DeletingRowLoader:
    """A stream's loader that also deletes rows, keeping per-key order with its upserts."""

    def __init__(self, upserts: RowLoader, deleter: RowDeleter) -> None:
        """Wrap the stream's loader.

        Args:
            upserts: The loader of upserts (rowsets or async).
            deleter: The loader of deletes.
        """
        self.upserts = upserts
        self.deleter = deleter

    def records_per_batch(self, batch_size_rows: int | None) -> int:
        """Records per batch: the upsert loader's.

        Args:
            batch_size_rows: The setting, if set.

        Returns:
            The batch size.
        """
        return self.upserts.records_per_batch(batch_size_rows)

    def open_batch(self) -> DeletingBatchLoad:
        """Start a batch.

        Returns:
            The batch's load.
        """
        return DeletingBatchLoad(self.upserts, self.deleter)


class DeletingBatchLoad:
    """A batch whose rounds may hold deletes: upserts before a delete finish before it."""

    def __init__(self, upserts: RowLoader, deleter: RowDeleter) -> None:
        """Start the batch.

        Args:
            upserts: The loader of upserts; a new load of it follows each round of deletes.
            deleter: The loader of deletes.
        """
        self._upserts = upserts
        self._deleter = deleter
        self._load: BatchLoad = upserts.open_batch()
        self._done = LoadResult()  # outcomes of rounds settled while reading

    @property
    def send_at(self) -> int:
        """Pending rows of a DE sent while reading once they are this many (the loader's)."""
        return self._load.send_at

    @send_at.setter
    def send_at(self, rows: int) -> None:
        self._load.send_at = rows

    def holds(self, key: str, primary_key: tuple[Any, ...]) -> bool:
        """Tell whether an upsert for the key was sent and is not confirmed yet.

        Args:
            key: Data Extension key.
            primary_key: A row's primary key.

        Returns:
            True when a row for the key is in flight (deletes never are: they run to the end).
        """
        return self._load.holds(key, primary_key)

    def send(self, key: str, rows: PendingRows) -> None:
        """Send a Data Extension's pending round now; reading goes on after its deletes.

        Args:
            key: Data Extension key.
            rows: Its pending rows by primary key (upserts and deletes).
        """
        upserts, deletes = split_deletes(rows)
        if not deletes:
            self._load.send(key, rows)
            return
        self._settle([{key: upserts}], {key: deletes}, self._done)

    def finish(self, rounds: list[dict[str, PendingRows]], result: LoadResult) -> None:
        """Load the rounds in order: each round's deletes wait for every upsert before them.

        Args:
            rounds: Data Extension key -> its rows by primary key, per round.
            result: Where outcomes are added as they come.
        """
        result.extend(self._done)
        self._done = LoadResult()
        waiting: list[dict[str, PendingRows]] = []
        for pending in rounds:
            upserts: dict[str, PendingRows] = {}
            deletes: dict[str, list[DataExtensionRow]] = {}
            for key, rows in pending.items():
                upserts[key], found = split_deletes(rows)
                if found:
                    deletes[key] = found
            if deletes:
                self._settle([*waiting, upserts], deletes, result)
                waiting = []
            else:
                waiting.append(pending)
        self._load.finish(waiting, result)

    def _settle(
        self,
        rounds: list[dict[str, PendingRows]],
        deletes: dict[str, list[DataExtensionRow]],
        result: LoadResult,
    ) -> None:
        """Finish every upsert so far (and these rounds), then delete; start a new load."""
        self._load.finish([{k: rows for k, rows in r.items() if rows} for r in rounds], result)
        self._load = self._upserts.open_batch()
        for key, rows in deletes.items():
            result.extend(self._deleter.delete(key, rows))
