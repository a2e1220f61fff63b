"""``--plan``: read the input and say what each Data Extension needs, and what a mirror deletes.

Nothing is written to SFMC: definitions and, for a mirror, rows' keys are only read. Per
stream the plan shows the Data Extensions to create (columns and types), the columns to add,
the attributes a Data Extension lacks (not sent), type conflicts and primary-key mismatches.
Records are read to find the audiences of audience streams (one Boolean column each) and,
with ``load_method: overwrite``, to route them as a load would and keep the primary keys of
mirrored Data Extensions (only the keys): per mirrored Data Extension the plan then tells the
rows it holds, the keys in the input, how many rows the mirror would delete and whether it
would refuse, and why. Then one line: whether a load would succeed with the current settings,
and if not, why. Exit code 0 or 1 follows it.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord

from target_sfmc.data_extensions import UNREADABLE, DataExtension
from target_sfmc.de_conflicts import conflicts, mismatches
from target_sfmc.de_tables import TableSpec, stream_tables
from target_sfmc.errors import TargetSfmcError
from target_sfmc.mapping import title_case
from target_sfmc.mirror import MIRRORED_TYPES, Mirror
from target_sfmc.records import DataExtensionRow
from target_sfmc.routing import StreamRouting
from target_sfmc.settings_schema import STREAM_TYPES
from target_sfmc.sink_base import RuntimeSink

if TYPE_CHECKING:
    from singer_sdk import Target
    from singer_sdk.sinks.core import BaseJSONSchemaValidator

    from target_sfmc.data_extensions import DataExtensionCatalog
    from target_sfmc.de_columns import Column
    from target_sfmc.mirror import MirrorPlan
    from target_sfmc.settings import TargetSettings


@dataclass
class PlannedStream:
    """What the input says about one stream."""

    schema: dict[str, Any]
    key_properties: list[str]
    audiences: dict[str, None] = field(default_factory=dict)  # ordered set of names


@dataclass
class Planner:
    """Collects the input's streams while it is read."""

    streams: dict[str, PlannedStream] = field(default_factory=dict)
    # What each mirror of the input would do, in the order a load would mirror.
    mirrors: list[MirrorPlan] = field(default_factory=list)


class PlanSink(RuntimeSink):
    """Notes a stream's SCHEMA, its audiences and its mirrored keys; loads nothing."""

    def __init__(
        self, target: Target, stream_name: str, schema: dict, key_properties: list[str] | None
    ) -> None:
        """Create the sink.

        Args:
            target: The target (in plan mode it holds the planner).
            stream_name: Stream name after stream maps.
            schema: Stream schema.
            key_properties: Stream key properties.
        """
        self.planner: Planner = target.planner  # type: ignore[attr-defined]
        super().__init__(target, stream_name, schema, key_properties)

    def setup(self) -> None:
        """Note the stream (a later SCHEMA replaces an earlier one)."""
        self.planned = PlannedStream(dict(self.schema), list(self.key_properties))
        self.planner.streams[self.stream_name] = self.planned
        settings = self.runtime.settings
        stream = settings.streams.get(self.stream_name)
        self._audience_property = (
            stream.audience_property if stream is not None and stream.type == "audience" else None
        )
        # A mirror compares keys: records are routed as a load routes them, any stream's rows
        # count for the Data Extension they go to.
        self._routing: StreamRouting | None = None
        if stream is not None and self.runtime.mirror is not None:
            self._routing = StreamRouting.of(stream, settings, list(self.key_properties))
            self.register_mirror(stream)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Records are not validated while planning.

        Returns:
            None.
        """
        return None

    def validate_and_parse(self, record: dict[str, Any]) -> None:
        """Parse a routed record's date-like fields, as a load does; nothing is validated.

        Args:
            record: The record (changed in place).
        """
        if self._routing is not None:
            # An unparsable date fails a load at validation; the plan does not validate.
            with contextlib.suppress(InvalidRecord):
                self.date_parser.parse(record)

    def process_record(self, record: dict, context: dict) -> None:
        """Note the audience a record names (audience streams) and its mirrored keys.

        Args:
            record: The record.
            context: The SDK's batch context.
        """
        del context  # the SDK's signature; planning keeps no batch
        deleted = self.take_record_deleted()
        if self._audience_property is not None:
            audience = record.get(self._audience_property)
            if isinstance(audience, str) and title_case(audience):
                self.planned.audiences[audience] = None
        mirror = self.runtime.mirror
        if self._routing is None or mirror is None:
            return
        for outcome in self._routing.outcomes(record, deleted=deleted):
            if type(outcome) is DataExtensionRow:
                mirror.note(outcome)

    def activate_version(self, new_version: int) -> None:
        """``ACTIVATE_VERSION``: plan the mirror a load would run now.

        Args:
            new_version: The version the tap activates.
        """
        del new_version
        found = self.mirror_to_activate()
        if found is not None:
            mirror, key = found
            self.planner.mirrors.append(mirror.plan(key, at="at ACTIVATE_VERSION"))

    def process_batch(self, context: dict) -> None:
        """Nothing is loaded.

        Args:
            context: The SDK's batch context.
        """


def _column_line(column: Column) -> str:
    flags = " primary key" if column.primary_key else ""
    return f"      {column.name}: {column.short()}{flags}"


class PlanReport:
    """The plan's lines and the first reason a load would fail."""

    def __init__(self, settings: TargetSettings) -> None:
        """Start an empty plan.

        Args:
            settings: Target settings.
        """
        self.settings = settings
        self.lines: list[str] = []
        self.failures: list[str] = []

    def fail(self, reason: str) -> None:
        """Note why a load would fail.

        Args:
            reason: One sentence.
        """
        self.failures.append(reason)
        self.lines.append(f"    FAILS: {reason}")

    def data_extension(
        self, catalog: DataExtensionCatalog, stream: str, spec: TableSpec, planned: dict[str, Any]
    ) -> None:
        """Plan one Data Extension of a stream.

        Args:
            catalog: The run's catalog (reads only).
            stream: The stream.
            spec: The columns the stream sends.
            planned: Data Extensions this plan creates, by case-folded key (their spec).
        """
        options = self.settings.data_extensions
        folded = spec.key.casefold()
        found = catalog.lookup(spec.key)
        if found is UNREADABLE:
            self.lines.append(
                f"  data extension '{spec.key}': its definition cannot be read (HTTP 403: the "
                "package lacks Data Extensions Read); rows are sent as they are."
            )
            return
        if found is None and folded in planned:
            earlier: TableSpec = planned[folded]
            missing = [c for f, c in spec.columns.items() if f not in earlier.columns]
            self.lines.append(
                f"  data extension '{spec.key}': created for an earlier stream of this plan"
            )
            self._columns_to_add(spec, missing, can_add=True)
            for column in missing:
                earlier.columns[column.name.casefold()] = column
            return
        if found is None:
            if not options.create:
                self.lines.append(f"  data extension '{spec.key}': does not exist")
                self.fail(
                    f"data extension '{spec.key}' (stream '{stream}') does not exist; create "
                    "it, fix its key, or set create_data_extensions to true."
                )
                return
            self._create(catalog, stream, spec)
            planned[folded] = spec
            return
        if not isinstance(found, DataExtension):  # pragma: no cover - narrowed above
            return
        self._existing(found, stream, spec)

    def _create(self, catalog: DataExtensionCatalog, stream: str, spec: TableSpec) -> None:
        try:
            folder: Any = catalog.folder_id(spec.key, stream)
        except TargetSfmcError as exc:
            folder = "?"
            self.fail(str(exc))
        sendable = ", sendable (Contact Key relates to Subscriber Key)" if spec.sendable else ""
        self.lines.append(
            f"  data extension '{spec.key}': CREATE as '{spec.name}' in folder {folder}{sendable}"
        )
        self.lines.extend(_column_line(column) for column in spec.columns.values())
        for folded, problem in spec.problems.items():
            self.fail(
                f"column '{spec.columns[folded].name}' of data extension '{spec.key}' cannot be "
                f"created as the schema asks, {problem}."
            )

    def _existing(self, de: DataExtension, stream: str, spec: TableSpec) -> None:
        options = self.settings.data_extensions
        keys = ", ".join(de.primary_keys) or "none"
        self.lines.append(
            f"  data extension '{de.key}': exists, {len(de.columns)} columns, primary key {keys}"
        )
        missing = [c for f, c in spec.columns.items() if f not in de.columns]
        self._columns_to_add(spec, missing, can_add=options.add_missing_fields)
        expected = {name.casefold() for name in spec.primary_keys}
        if expected != {name.casefold() for name in de.primary_keys}:
            self.fail(
                f"data extension '{de.key}' has primary key {keys} but stream '{stream}' keys "
                f"its rows by {', '.join(spec.primary_keys) or 'none'}."
            )
        for problem in mismatches(de, spec):
            if not problem.startswith("column "):
                continue  # the primary key, reported above
            self.lines.append(f"    type conflict: {problem}")
        refused = [existing.name for existing, _, c in conflicts(de, spec) if c.every_value]
        if refused and not self.settings.skip_rejected_rows:
            self.fail(
                f"no value of {', '.join(refused)} can go into its column of data extension "
                f"'{de.key}' (stream '{stream}'), and row_error_policy is 'fail'."
            )

    def _columns_to_add(self, spec: TableSpec, missing: list[Column], *, can_add: bool) -> None:
        if not missing:
            return
        if can_add:
            self.lines.append("    ADD columns:")
            self.lines.extend(_column_line(column) for column in missing)
            for column in missing:
                problem = spec.problems.get(column.name.casefold())
                if problem is not None:
                    self.fail(
                        f"column '{column.name}' of data extension '{spec.key}' cannot be "
                        f"added as the schema asks, {problem}."
                    )
            return
        names = ", ".join(column.name for column in missing)
        self.lines.append(
            "    not sent when a record carries them, the data extension lacks them "
            f"(add_missing_fields is off): {names}"
        )

    def mirror(self, plan: MirrorPlan) -> None:
        """Tell what a mirror would delete, and whether it would be refused.

        Args:
            plan: What the mirror would do.
        """
        self.lines.append(f"Mirror of {plan.where} {plan.at}:")
        keys = f"{plan.keys} key{'' if plan.keys == 1 else 's'} in the input"
        if plan.held is None:
            self.lines.append(f"  {keys}; the data extension's keys could not be listed")
        elif not plan.exists:
            self.lines.append(f"  the data extension does not exist yet, {keys}: nothing to delete")
        else:
            new = f" ({plan.new} not in it yet)" if plan.new else ""
            self.lines.append(
                f"  {plan.held} rows in the data extension before the load, {keys}{new}"
            )
            if plan.doomed:
                self.lines.append(
                    f"  would delete {plan.doomed} of the {plan.total} rows it then holds "
                    f"({plan.doomed / plan.total:.0%})"
                )
            else:
                self.lines.append("  nothing to delete")
        if plan.refusal is not None:
            self.fail(plan.refusal)

    def entry_event(self, catalog: DataExtensionCatalog, spec: TableSpec) -> None:
        """Plan the ``Data`` of a Journey entry event definition.

        Args:
            catalog: The run's catalog (reads only).
            spec: The attributes the stream sends as ``Data``.
        """
        entry = catalog.entry_data_extension(spec.key)
        if entry is UNREADABLE:
            self.lines.append(
                f"  entry event '{spec.key}': its definition cannot be read (HTTP 403); every "
                "attribute is sent."
            )
            return
        if not isinstance(entry, DataExtension):
            self.lines.append(
                f"  entry event '{spec.key}': no data extension named by the definition; "
                "every attribute is sent."
            )
            return
        self.lines.append(
            f"  entry event '{spec.key}': data extension '{entry.key}', {len(entry.columns)} "
            "columns"
        )
        lacking = [c.name for f, c in spec.columns.items() if f not in entry.columns]
        if lacking:
            self.lines.append(
                "    not sent when a record carries them, the data extension lacks them: "
                + ", ".join(lacking)
            )


def build_plan(
    planner: Planner, settings: TargetSettings, catalog: DataExtensionCatalog
) -> PlanReport:
    """Plan every stream of the input.

    Args:
        planner: What the input said.
        settings: Target settings.
        catalog: The run's catalog (reads only).

    Returns:
        The plan.
    """
    report = PlanReport(settings)
    planned: dict[str, Any] = {}
    for name, planned_stream in planner.streams.items():
        stream = settings.streams.get(name)
        report.lines.append(f"Stream '{name}':")
        if stream is None:
            if settings.ignore_unconfigured_streams:
                report.lines.append("  not configured: its records are skipped")
            else:
                report.fail(
                    f"stream '{name}' is not configured; add it under 'streams' with a 'type' "
                    f"({', '.join(STREAM_TYPES)}), or set ignore_unconfigured_streams to true."
                )
            continue
        try:
            specs, events = stream_tables(
                stream,
                settings,
                planned_stream.schema,
                planned_stream.key_properties,
                audiences=list(planned_stream.audiences),
            )
            for spec in specs:
                report.data_extension(catalog, name, spec, planned)
            for event in events:
                report.entry_event(catalog, event)
        except TargetSfmcError as exc:
            report.fail(str(exc))
        if settings.mirror and stream.type not in MIRRORED_TYPES:
            report.lines.append(
                "  load_method 'overwrite' mirrors identify and track streams: this stream is "
                "loaded as upserts only"
            )
    for mirror in planner.mirrors:
        report.mirror(mirror)
    if not planner.streams:
        report.lines.append("The input has no SCHEMA message.")
    return report


def run_plan(target: Any, file_input: Any) -> int:
    """Read the input, print the plan on stdout and tell the exit code.

    Args:
        target: The target (a TargetSfmc), not yet listening.
        file_input: Optional input file instead of stdin.

    Returns:
        0 when a load would succeed with the current settings, else 1.
    """
    planner = target.planner = Planner()
    runtime = target.runtime
    if runtime.settings.mirror:
        runtime.mirror = Mirror(runtime, planning=True)
    try:
        # Stdout carries the plan: the STATE messages the SDK writes while reading are dropped.
        with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")):
            target.listen(file_input)
        if runtime.mirror is not None:
            planner.mirrors.extend(runtime.mirror.plan_pending())
        report = build_plan(planner, runtime.settings, runtime.data_extensions)
    except TargetSfmcError as exc:
        sys.stdout.write(f"Plan: a load would fail: {exc}\n")
        return 1
    for line in report.lines:
        sys.stdout.write(line + "\n")
    if report.failures:
        more = f" (and {len(report.failures) - 1} more above)" if len(report.failures) > 1 else ""
        sys.stdout.write(f"Plan: a load would fail: {report.failures[0]}{more}\n")
        return 1
    sys.stdout.write("Plan: a load would succeed with the current settings.\n")
    return 0
