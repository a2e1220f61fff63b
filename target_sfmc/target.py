"""TargetSfmc: settings, which sink each stream gets, the CLI, and the run summary."""

from __future__ import annotations

import copy
import os
import typing as t
from importlib.metadata import PackageNotFoundError, version

import click
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities

from target_sfmc.connection_check import check_connection, report
from target_sfmc.errors import TargetSfmcError
from target_sfmc.fastpath.target import FastPathTarget
from target_sfmc.ignored_streams import IgnoredStreamSink
from target_sfmc.plan import Planner, PlanSink, run_plan
from target_sfmc.records import FILTERED
from target_sfmc.run_report import (
    build_report,
    check_report_path,
    requested_path,
    termination_error,
    unexpected_error,
    utc_now,
    write_report_or_log,
)
from target_sfmc.runtime import LoadingRuntime
from target_sfmc.settings import parse_settings
from target_sfmc.settings_checks import check_batch_size, check_environment, check_setting_names
from target_sfmc.settings_schema import CONFIG_SCHEMA
from target_sfmc.sinks import SfmcSink
from target_sfmc.tuning import tuned_for_loading

if t.TYPE_CHECKING:
    import datetime as dt

    from singer_sdk.sinks import Sink

ENV_PREFIX = "TARGET_SFMC"

try:
    __version__ = version("target-sfmc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def _hide_secret_value(error: str) -> str:
    for name, definition in CONFIG_SCHEMA["properties"].items():
        if definition.get("secret") and name in error:
            if "required property" in error:
                return f"Setting '{name}' is missing."
            return f"Setting '{name}' is not valid (its value is not shown)."
    return error


class TargetSfmc(FastPathTarget):
    """Load any Singer tap's output into Salesforce Marketing Cloud Data Extensions, Contacts and Journeys."""  # noqa: E501

    name = "target-sfmc"
    package_name = "target-sfmc"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = SfmcSink

    capabilities: t.ClassVar[list] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        PluginCapabilities.ACTIVATE_VERSION,
        TargetCapabilities.VALIDATE_RECORDS,
        TargetCapabilities.HARD_DELETE,
    ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Create the target and check the settings no JSON Schema can check.

        Args:
            *args: Passed to :class:`singer_sdk.Target`.
            **kwargs: Passed to :class:`singer_sdk.Target`.

        Raises:
            ConfigValidationError: With one sentence per problem.
        """
        if kwargs.get("parse_env_config"):
            properties = self.all_settings()
            problems = check_environment(properties, f"{ENV_PREFIX}_", os.environ)
            if problems:
                raise ConfigValidationError("Config validation failed", errors=problems)
        try:
            super().__init__(*args, **kwargs)
        except ConfigValidationError as exc:
            # The SDK's messages quote the offending value, which must not be the secret.
            errors = [_hide_secret_value(error) for error in exc.errors]
            raise ConfigValidationError(str(exc), errors=errors, schema=exc.schema) from None
        settings, errors = parse_settings(self.config)
        errors = [
            *check_setting_names(self.config, self.all_settings()),
            *check_batch_size(self.config),
            *errors,
            *check_report_path(settings.run_report_path),
        ]
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        try:
            self.runtime = LoadingRuntime.create(settings, user_agent=f"target-sfmc/{__version__}")
        except OSError as exc:
            raise ConfigValidationError(
                "Config validation failed",
                errors=[
                    f"Setting 'dead_letter_path' cannot be opened for writing ({exc.strerror})."
                ],
            ) from None
        self.runtime.drain = self.drain_one
        if (
            settings.use_async_api
            and self.config.get("do_not_create_or_update_contacts") is not True
        ):
            self.logger.info(
                "use_async_api is on: the Contacts API is not called (SFMC batching rule)."
            )
        # Sinks share one limiter; a few draining at once keep it busy.
        self.max_parallelism = 4
        # For the run report: the last STATE value written to stdout, and what stopped the run.
        self.emitted_state: t.Any = None
        self.stopped_by: str | None = None
        # Set by --plan: streams are only noted, nothing is loaded.
        self.planner: Planner | None = None

    @classmethod
    def all_settings(cls) -> dict[str, dict[str, t.Any]]:
        """Every setting's JSON Schema: the target's own and the SDK's built-in ones.

        Returns:
            Setting name -> its schema.
        """
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return schema["properties"]

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """Pick the sink class of a stream.

        Args:
            stream_name: Stream name after stream maps.

        Returns:
            The loading sink, or the counting sink for ignored streams.
        """
        if self.planner is not None:
            return PlanSink
        settings = self.runtime.settings
        if stream_name not in settings.streams and settings.ignore_unconfigured_streams:
            return IgnoredStreamSink
        return SfmcSink

    def on_record_filtered(self, stream_name: str) -> None:
        """Count a record a stream map dropped as read and skipped (``filtered``).

        Args:
            stream_name: The record's stream, before stream maps.
        """
        report = self.runtime.report
        report.count(stream_name, read=1)
        report.count_skip(stream_name, FILTERED)

    def on_input_loaded(self) -> None:
        """Every record of the input is confirmed: mirror what ``load_method`` says to."""
        mirror = self.runtime.mirror
        if mirror is not None and not mirror.planning:  # --plan tells, after reading
            mirror.mirror_pending()

    def on_termination(self, signum: int) -> None:
        """On SIGTERM/SIGINT, never emit STATE for rows SFMC has not confirmed.

        Args:
            signum: Signal number.

        Raises:
            SystemExit: Always, with 128 + the signal number.
        """
        self.stopped_by = termination_error(
            signum, batch_in_flight=bool(self.runtime.batches_in_flight)
        )
        if self.runtime.batches_in_flight:
            self.logger.error(
                "Received signal %d while a batch was loading; exiting without emitting state "
                "for unconfirmed rows.",
                signum,
            )
        else:
            self.logger.info("Received signal %d; loading what was read, then exiting.", signum)
            self.drain_all(is_endofpipe=True)
        raise SystemExit(128 + signum)

    def on_state_emitted(self, state: dict) -> None:
        """Remember the last STATE written, for the run report.

        Args:
            state: The state (a copy).
        """
        self.emitted_state = state

    def shutdown(self) -> None:
        """Release threads, connections and the dead-letter file."""
        self.runtime.shutdown()

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Add ``--test`` and ``--plan`` to the SDK's command line.

        Returns:
            The click command.
        """
        command = super().get_singer_command()
        command.params.append(
            click.Option(
                ["--test"],
                is_flag=True,
                help="Authenticate and check the configured Data Extension and event keys.",
            )
        )
        command.params.append(
            click.Option(
                ["--plan"],
                is_flag=True,
                help=(
                    "Read the input and print what each Data Extension needs (create, add "
                    "columns, conflicts) and, with load_method 'overwrite', how many rows the "
                    "mirror would delete; write nothing. Exit 1 if a load would fail."
                ),
            )
        )
        return command

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        file_input: t.IO[str] | None = None,
        test: bool = False,
        plan: bool = False,
    ) -> None:
        """Run the target from the CLI, always ending with the summary (and the run report).

        Args:
            about: Display package metadata and settings.
            about_format: Format for ``--about``.
            config: Config input from the CLI.
            file_input: Optional input file instead of stdin.
            test: Only check the connection and the configured keys.
            plan: Only print what each Data Extension needs; write nothing.
        """
        started_at = utc_now()
        try:
            target = cls.from_cli(about=about, about_format=about_format, config=config)
        except ConfigValidationError as exc:
            report_path = None if test else requested_path(config, os.environ, ENV_PREFIX)
            if report_path:
                document = build_report(
                    started_at=started_at,
                    ended_at=utc_now(),
                    exit_status=1,
                    error=exc.errors[0] if exc.errors else str(exc),
                    last_state=None,
                    accounting=None,
                    version=__version__,
                )
                write_report_or_log(report_path, document)
            raise
        if test:
            try:
                passed = report(check_connection(target.runtime.settings, target.runtime.client))
            finally:
                target.shutdown()
            raise SystemExit(0 if passed else 1)
        if plan:
            try:
                plan_exit = run_plan(target, file_input)
            finally:
                target.shutdown()
            raise SystemExit(plan_exit)
        target.runtime.report.start_progress()
        failed = True
        exit_status, error = 1, None
        try:
            with tuned_for_loading():
                target.listen(file_input)
            failed = False
            exit_status = 0
        except TargetSfmcError as exc:
            error = str(exc)
            target.logger.error("%s", exc)  # noqa: TRY400 - the sentence is the whole story
            raise SystemExit(1) from None
        except SystemExit as exc:  # SIGTERM / SIGINT (see on_termination)
            code = exc.code
            exit_status = code if isinstance(code, int) else (0 if code is None else 1)
            error = target.stopped_by
            raise
        except BaseException as exc:
            error = unexpected_error(exc)
            raise
        finally:
            target.runtime.report.log_summary(failed=failed)
            target.write_run_report(started_at, exit_status, error)
            target.shutdown()

    def write_run_report(
        self, started_at: dt.datetime, exit_status: int, error: str | None
    ) -> None:
        """Write the run report, when ``run_report_path`` asks for one.

        Args:
            started_at: When the run started (UTC).
            exit_status: The process exit status.
            error: The first error, or None.
        """
        path = self.runtime.settings.run_report_path
        if not path:
            return
        document = build_report(
            started_at=started_at,
            ended_at=utc_now(),
            exit_status=exit_status,
            error=error,
            last_state=self.emitted_state,
            accounting=self.runtime.report,
            version=__version__,
        )
        write_report_or_log(path, document)
