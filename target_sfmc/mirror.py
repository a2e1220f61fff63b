"""Mirror (``load_method: overwrite``): a fully loaded stream's Data Extension equals the input.

Once a stream is loaded in full, its Data Extension keeps only the rows whose primary key
this run loaded. While records are read, the keys of every row bound for a mirrored Data
Extension are noted (a row deleted later in the input is taken off again). At the end of the
input, or when the tap sends ``ACTIVATE_VERSION`` for the stream, and only once SFMC confirmed
every row, the Data Extension's keys are read through the REST rowset API, page by page, and
the rows whose key was not loaded are deleted through SOAP.

Nothing is deleted, and the run fails with one sentence saying why, when:

- the stream sent no rows (unless ``allow_empty_mirror``), since that would empty the DE;
- more than ``mirror_max_delete_ratio`` of the DE's rows would go;
- a key loaded in this run is not among the keys SFMC holds, or the DE's primary key is not
  the stream's: the keys cannot be compared safely (a type SFMC reads back in another
  spelling, a Date key);
- the pages SFMC returns do not add up to its row count.

Key values are compared as text, case-insensitively, numbers by value (SFMC reads values back
as text and column names in lower case).

``--plan`` notes the same keys, reads the Data Extension's keys the same way before anything is
loaded, and tells what the mirror would delete and whether it would refuse, with the load's
own refusals; it deletes nothing.
"""

from __future__ import annotations

import decimal
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_sfmc.errors import TargetSfmcError, without_quoted_values
from target_sfmc.loading.deletes import RowDeleter
from target_sfmc.records import DataExtensionRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from target_sfmc.client import SfmcClient
    from target_sfmc.records import SfmcRejection
    from target_sfmc.runtime import LoadingRuntime
    from target_sfmc.settings import TargetSettings

LOGGER = logging.getLogger("target-sfmc.mirror")

ROWSET_PAGE_SIZE = 2500
MIRRORED_TYPES = frozenset({"identify", "track"})
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

Comparable = tuple[str, ...]


class MirrorRefusedError(TargetSfmcError):
    """The mirror would delete rows it cannot be sure of, so it deleted none."""


def comparable_value(value: Any) -> str:
    """A key value as the mirror compares it: text, any case, numbers by value.

    Args:
        value: A key value as loaded, or as SFMC reads it back.

    Returns:
        Its comparable form.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    if _NUMBER.fullmatch(text):
        try:
            number = decimal.Decimal(text)
        except decimal.InvalidOperation:  # pragma: no cover - the pattern rules this out
            return text.casefold()
        return "0" if number.is_zero() else format(number.normalize(), "f")
    return text.casefold()


def comparable_key(keys: Mapping[str, Any]) -> Comparable:
    """A row's primary key as the mirror compares it (columns in name order, any case).

    Args:
        keys: Key column -> value.

    Returns:
        The comparable key.
    """
    if len(keys) == 1:
        (value,) = keys.values()
        return (comparable_value(value),)
    return tuple(
        comparable_value(value)
        for _, value in sorted(keys.items(), key=lambda item: item[0].casefold())
    )


def refuse_empty(where: str, rows: int, settings: TargetSettings) -> None:
    """Refuse to mirror a stream that sent no rows, unless ``allow_empty_mirror``.

    Args:
        where: The Data Extension and its streams, as refusals name them.
        rows: Rows read for the Data Extension since its last mirror.
        settings: Target settings.

    Raises:
        MirrorRefusedError: When every row would go only because the stream was empty.
    """
    if rows == 0 and not settings.allow_empty_mirror:
        raise MirrorRefusedError(
            f"Mirror of {where} refused: the stream sent no rows in this run, so every row "
            "would be deleted; nothing was deleted. Set allow_empty_mirror to true to let an "
            "empty stream empty its data extension."
        )


def refuse_too_many(
    where: str, doomed: int, total: int, rows: int, settings: TargetSettings
) -> None:
    """Refuse to delete more than ``mirror_max_delete_ratio`` of the Data Extension.

    Args:
        where: The Data Extension and its streams, as refusals name them.
        doomed: Rows the mirror would delete.
        total: Rows the Data Extension holds when the mirror runs.
        rows: Rows read for the Data Extension since its last mirror (an empty stream that
            may empty its Data Extension is not held to the ratio).
        settings: Target settings.

    Raises:
        MirrorRefusedError: When too much would go.
    """
    ratio = settings.mirror_max_delete_ratio
    if rows and doomed > ratio * total:
        raise MirrorRefusedError(
            f"Mirror of {where} refused: it would delete {doomed} of {total} rows "
            f"({doomed / total:.0%}), more than mirror_max_delete_ratio ({ratio:g}); "
            "nothing was deleted."
        )


def read_keys(
    client: SfmcClient, data_extension_key: str, columns: tuple[str, ...], where: str
) -> dict[Comparable, dict[str, Any]]:
    """Every key a Data Extension holds, read page by page through the REST rowset API.

    Args:
        client: SFMC client.
        data_extension_key: The Data Extension.
        columns: Its primary-key columns, as the stream names them.
        where: The Data Extension and its streams, as refusals name them.

    Returns:
        Comparable key -> the key's values, by the stream's column names (to delete by).

    Raises:
        MirrorRefusedError: When SFMC's primary key is not the stream's, or its pages do not
            list each of its rows exactly once.
    """
    names = {column.casefold(): column for column in columns}
    held: dict[Comparable, dict[str, Any]] = {}
    size, page, total = ROWSET_PAGE_SIZE, 1, None
    while True:
        answer = client.read_rowset_page(data_extension_key, page, size)
        items = answer.get("items") or []
        count = answer.get("count")
        total = int(count) if isinstance(count, int) else total
        for item in items:
            keys = item.get("keys") if isinstance(item, dict) else None
            found = {str(name).casefold(): value for name, value in (keys or {}).items()}
            if set(found) != set(names):
                raise MirrorRefusedError(
                    f"Mirror of {where} refused: SFMC reads its primary key as "
                    f"({', '.join(sorted(found)) or 'none'}), the stream's is "
                    f"({', '.join(columns)}); nothing was deleted."
                )
            key = comparable_key(found)
            if key in held:
                raise MirrorRefusedError(
                    f"Mirror of {where} refused: SFMC returned a row twice while paging, so "
                    "its rows cannot be listed safely; nothing was deleted."
                )
            held[key] = {names[name]: value for name, value in found.items()}
        if page == 1 and items and len(items) < size:
            size = len(items)  # SFMC served smaller pages than asked: page by its size
        done = len(held) >= total if total is not None else len(items) < size
        if not items or done:
            break
        page += 1
    if total is not None and len(held) != total:
        raise MirrorRefusedError(
            f"Mirror of {where} refused: SFMC counts {total} rows but its pages listed "
            f"{len(held)}; nothing was deleted."
        )
    return held


@dataclass(frozen=True)
class MirrorPlan:
    """What mirroring one Data Extension would do, as ``--plan`` tells it."""

    where: str  # the Data Extension and its streams
    at: str  # when the mirror runs: at ACTIVATE_VERSION, or at the end of the input
    exists: bool  # False: the load creates it, so it holds only this run's rows
    held: int | None  # rows it holds before the load (after the previous mirror); None: unread
    keys: int  # keys the input leaves in it (loaded, not deleted later in the input)
    new: int  # of those keys, the ones it does not hold yet
    total: int  # rows it holds when the mirror runs
    doomed: int  # rows the mirror would delete
    refusal: str | None  # the load's own sentence when the mirror would be refused


@dataclass
class _Loaded:
    """What this run loaded into one Data Extension since its last mirror."""

    columns: tuple[str, ...]  # primary-key columns, as the stream names them
    streams: set[str] = field(default_factory=set)
    keys: set[Comparable] = field(default_factory=set)
    refused: set[Comparable] = field(default_factory=set)
    rows: int = 0
    mirrored: bool = False
    # Planning only: keys whose last row in the input deletes them (hard_delete).
    gone: set[Comparable] = field(default_factory=set)
    # Planning only: the keys the plan expects the Data Extension to hold after its last
    # mirror (None: as SFMC holds them now).
    planned_held: set[Comparable] | None = None

    def where(self, data_extension_key: str) -> str:
        """The Data Extension and its streams, as refusals and logs name them.

        Args:
            data_extension_key: The Data Extension.

        Returns:
            ``data extension 'KEY' (stream 'a', 'b')``.
        """
        streams = ", ".join(repr(s) for s in sorted(self.streams))
        return f"data extension '{data_extension_key}' (stream {streams})"


class Mirror:
    """The run's mirrored Data Extensions: keys loaded, and the step that deletes the rest."""

    def __init__(self, runtime: LoadingRuntime, *, planning: bool = False) -> None:
        """Track the Data Extensions of the configured identify and track streams.

        Args:
            runtime: The run's shared parts.
            planning: ``--plan``: tell what a mirror would do (:meth:`plan`), never delete.
        """
        self.runtime = runtime
        self.planning = planning
        self._lock = threading.Lock()
        self._tracked: dict[str, _Loaded] = {}
        self._registered: dict[str, _Loaded] = {}
        for stream in runtime.settings.streams.values():
            if stream.type in MIRRORED_TYPES and stream.data_extension_key:
                self._tracked.setdefault(stream.data_extension_key, _Loaded(()))

    def register(self, stream_name: str, data_extension_key: str, columns: tuple[str, ...]) -> None:
        """Mirror a stream's Data Extension at the end of the input.

        Args:
            stream_name: The stream.
            data_extension_key: The Data Extension it loads.
            columns: Its primary-key columns.
        """
        loaded = self._tracked.setdefault(data_extension_key, _Loaded(columns))
        if not loaded.columns:
            loaded.columns = columns
        loaded.streams.add(stream_name)
        self._registered[data_extension_key] = loaded

    def note(self, row: DataExtensionRow) -> None:
        """Note a row bound for SFMC (reading thread only).

        Args:
            row: The row (to upsert, or to delete).
        """
        loaded = self._tracked.get(row.data_extension_key)
        if loaded is None:
            return
        loaded.rows += 1
        loaded.mirrored = False
        key = comparable_key(row.keys)
        if row.delete:
            loaded.keys.discard(key)
            if self.planning:
                loaded.gone.add(key)
        else:
            loaded.keys.add(key)
            if self.planning:
                loaded.gone.discard(key)

    def note_refused(self, rejections: list[SfmcRejection]) -> None:
        """Note the rows SFMC refused: their keys stay, though SFMC may not hold them.

        Args:
            rejections: A batch's refused rows, events and exits.
        """
        for rejection in rejections:
            row = rejection.item
            if not isinstance(row, DataExtensionRow) or row.delete:
                continue
            loaded = self._tracked.get(row.data_extension_key)
            if loaded is not None:
                with self._lock:
                    loaded.refused.add(comparable_key(row.keys))

    def has_rows(self, data_extension_key: str) -> bool:
        """Tell whether rows for the Data Extension were read since its last mirror.

        Args:
            data_extension_key: The Data Extension.

        Returns:
            True when a mirror now would compare against rows of this run.
        """
        loaded = self._tracked.get(data_extension_key)
        return loaded is not None and loaded.rows > 0

    def _pending(self) -> Iterable[tuple[str, _Loaded]]:
        """The registered Data Extensions not mirrored since their last rows, by key."""
        return [
            (key, loaded) for key, loaded in sorted(self._registered.items()) if not loaded.mirrored
        ]

    def mirror_pending(self) -> None:
        """At the end of the input: mirror every Data Extension not mirrored since its rows.

        Raises:
            MirrorRefusedError: Naming every Data Extension whose mirror was refused (the
                others are mirrored all the same).
        """
        refusals: list[str] = []
        for key, loaded in self._pending():
            try:
                self.mirror(key, min(loaded.streams))
            except MirrorRefusedError as exc:
                refusals.append(str(exc))
        if refusals:
            raise MirrorRefusedError(" ".join(refusals))

    def mirror(self, data_extension_key: str, stream_name: str) -> None:
        """Delete the Data Extension's rows whose key this run did not load.

        Call only once SFMC confirmed every row of the streams writing it.

        Args:
            data_extension_key: The Data Extension.
            stream_name: The stream the deleted rows are counted for.

        Raises:
            MirrorRefusedError: When deleting could remove rows it should not (see above).
            RuntimeError: When planning (a plan deletes nothing).
        """
        if self.planning:
            raise RuntimeError("--plan never mirrors: it deletes nothing.")
        runtime = self.runtime
        settings = runtime.settings
        loaded = self._registered[data_extension_key]
        where = loaded.where(data_extension_key)
        refuse_empty(where, loaded.rows, settings)
        runtime.batch_started()
        try:
            held = read_keys(runtime.client, data_extension_key, loaded.columns, where)
            total = len(held)
            with self._lock:
                expected = loaded.keys - loaded.refused
            missing = sum(key not in held for key in expected)
            if missing:
                raise MirrorRefusedError(
                    f"Mirror of {where} refused: {missing} key(s) loaded in this run are not "
                    "among the keys SFMC reads back, so the keys cannot be compared safely; "
                    "nothing was deleted."
                )
            doomed = [raw for key, raw in held.items() if key not in loaded.keys]
            refuse_too_many(where, len(doomed), total, loaded.rows, settings)
            deleted = self._delete(data_extension_key, doomed, where) if doomed else 0
        finally:
            runtime.batch_finished()
        runtime.report.count(stream_name, mirror_deleted=deleted)
        LOGGER.info(
            "Mirror of %s: %d of %d rows were not in this run's input and were deleted.",
            where,
            deleted,
            total,
        )
        loaded.keys.clear()
        loaded.refused.clear()
        loaded.rows = 0
        loaded.mirrored = True

    def plan_pending(self) -> list[MirrorPlan]:
        """``--plan`` at the end of the input: what :meth:`mirror_pending` would do.

        Returns:
            One plan per Data Extension a load would mirror at the end of the input.
        """
        return [self.plan(key, at="at the end of the input") for key, _ in self._pending()]

    def plan(self, data_extension_key: str, *, at: str) -> MirrorPlan:
        """``--plan``: what :meth:`mirror` would do once the input's rows are loaded.

        The Data Extension's keys are read now, before anything is loaded; the load's rows
        are then added to them (and the rows it deletes taken off), so what the mirror would
        find after the load is known without writing anything. A key SFMC would read back in
        another spelling, or a row SFMC would refuse, cannot be foreseen.

        Args:
            data_extension_key: The Data Extension.
            at: When the mirror runs, in words.

        Returns:
            The plan; its ``refusal`` is the sentence the load would fail with.
        """
        settings = self.runtime.settings
        loaded = self._registered[data_extension_key]
        where = loaded.where(data_extension_key)
        refusal: str | None = None
        try:
            refuse_empty(where, loaded.rows, settings)
        except MirrorRefusedError as exc:
            refusal = str(exc)
        held = loaded.planned_held
        exists = True
        doomed = new = total = 0
        try:
            if held is None:
                found = self.runtime.data_extensions.lookup(data_extension_key)
                exists = found is not None
                held = set(
                    read_keys(self.runtime.client, data_extension_key, loaded.columns, where)
                    if exists
                    else ()
                )
            keys, gone = loaded.keys, loaded.gone
            new = sum(key not in held for key in keys)
            doomed = sum(key not in keys and key not in gone for key in held)
            total = len(held) - sum(key in gone for key in held) + new
            if refusal is None:
                refuse_too_many(where, doomed, total, loaded.rows, settings)
        except TargetSfmcError as exc:
            refusal = refusal or str(exc)
        plan = MirrorPlan(
            where=where,
            at=at,
            exists=exists,
            held=None if held is None else len(held),
            keys=len(loaded.keys),
            new=new,
            total=total,
            doomed=doomed,
            refusal=refusal,
        )
        # As after a mirror: the Data Extension then holds exactly the keys loaded.
        loaded.planned_held, loaded.keys = loaded.keys, set()
        loaded.gone.clear()
        loaded.rows = 0
        loaded.mirrored = True
        return plan

    def _delete(self, data_extension_key: str, doomed: list[dict[str, Any]], where: str) -> int:
        runtime = self.runtime
        deleter = RowDeleter(
            runtime.client,
            runtime.executor,
            describe=lambda _key: where,
            on_confirmed=runtime.report.note_confirmed,
        )
        rows = [DataExtensionRow(data_extension_key, k, dict(k), delete=True) for k in doomed]
        result = deleter.delete(data_extension_key, rows)
        if result.rejected:
            first = without_quoted_values(result.rejected[0].message)
            message = (
                f"Mirror of {where}: SFMC refused to delete {len(result.rejected)} of "
                f"{len(rows)} rows (first: {first})."
            )
            if not runtime.settings.skip_rejected_rows:
                raise TargetSfmcError(f"{message} Rerun once fixed: deletes are idempotent.")
            LOGGER.warning("%s", message)
        return result.deleted
