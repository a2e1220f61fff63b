"""TargetSfmc: settings, stream routing, state safety and the run summary."""

from __future__ import annotations

import sys
import time
import typing as t
from importlib.metadata import PackageNotFoundError, version

import click
from singer_sdk import Target
from singer_sdk.exceptions import (
    ConfigValidationError,
)
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import PluginBase, _ConfigInput

from target_sfmc.connection_check import check_connection, report
from target_sfmc.errors import TargetSfmcError
from target_sfmc.reader import LineNumberingReader
from target_sfmc.settings import CONFIG_SCHEMA, parse_settings
from target_sfmc.sinks import IgnoredStreamSink, LoadingRuntime, SfmcSink
from target_sfmc.transport import encode_json
from target_sfmc.tuning import tuned_for_loading

if t.TYPE_CHECKING:
    from types import FrameType

    import msgspec
    from singer_sdk.sinks import Sink

try:
    __version__ = version("target-sfmc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


# Lanes run the SDK's clock-based steps (metric logging, record age) at most this often.
_CLOCK_CHECK_SECONDS = 0.5


def _hide_secret_value(error: str) -> str:
    for name, definition in CONFIG_SCHEMA["properties"].items():
        if definition.get("secret") and name in error:
            return f"Setting '{name}' is not valid (its value is not shown)."
    return error


class TargetSfmc(Target):
    """Load any Singer tap's output into Salesforce Marketing Cloud Data Extensions, Contacts and Journeys."""  # noqa: E501

    name = "target-sfmc"
    package_name = "target-sfmc"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = SfmcSink
    message_reader_class = LineNumberingReader

    capabilities: t.ClassVar[list] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
    ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Create the target and check the settings no JSON Schema can check.

        Args:
            *args: Passed to :class:`singer_sdk.Target`.
            **kwargs: Passed to :class:`singer_sdk.Target`.

        Raises:
            ConfigValidationError: With one sentence per problem.
        """
        try:
            super().__init__(*args, **kwargs)
        except ConfigValidationError as exc:
            # The SDK's messages quote the offending value, which must not be the secret.
            errors = [_hide_secret_value(error) for error in exc.errors]
            raise ConfigValidationError(str(exc), errors=errors, schema=exc.schema) from None
        settings, errors = parse_settings(self.config)
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        if self.config.get("load_method") not in {None, "upsert", "append-only"}:
            self.logger.warning("load_method is ignored: SFMC loads are always upserts.")
        try:
            self.runtime = LoadingRuntime.create(settings, user_agent=f"target-sfmc/{__version__}")
        except OSError as exc:
            raise ConfigValidationError(
                "Config validation failed",
                errors=[
                    f"Setting 'dead_letter_path' cannot be opened for writing ({exc.strerror})."
                ],
            ) from None
        if (
            settings.use_async_api
            and self.config.get("do_not_create_or_update_contacts") is not True
        ):
            self.logger.info(
                "use_async_api is on: the Contacts API is not called (SFMC batching rule)."
            )
        # Sinks share one limiter; a few draining at once keep it busy.
        self.max_parallelism = 4
        self._direct_sinks: dict[str, Sink] = {}
        self._lanes_tried: set[str] = set()

    def _process_schema_message(self, message_dict: dict) -> None:
        """Handle a SCHEMA; when it replaces a stream's sink, load the old sink's rows first.

        The SDK keeps a replaced sink until the next full drain, while the new sink may drain
        earlier when it fills: the old rows would then land after newer ones for the same keys.

        Args:
            message_dict: The SCHEMA message.
        """
        stream_name = str(message_dict.get("stream"))
        self._reader.record_lanes.pop(stream_name, None)
        self._lanes_tried.discard(stream_name)
        super()._process_schema_message(message_dict)
        for replaced in self._sinks_to_clear:
            self.drain_one(replaced)

    def _process_record_message(self, message_dict: dict) -> None:
        """Handle a RECORD; streams without maps or flattening skip the SDK's generic path.

        The SDK copies, transforms and re-looks-up every record even when no stream map
        applies; that costs more than mapping the record to SFMC. The steps kept here are
        the SDK's own, in the SDK's order.

        Args:
            message_dict: The RECORD message.
        """
        stream_name = message_dict["stream"]
        sink: Sink | None = self._direct_sinks.get(stream_name)
        if sink is None or self._sinks_active.get(stream_name) is not sink:
            sink = self._direct_sink(stream_name)
        if sink is None:
            super()._process_record_message(message_dict)
            return
        record = message_dict["record"]
        context = sink._get_context(record)  # noqa: SLF001
        sink._remove_sdc_metadata_from_record(record)  # noqa: SLF001
        sink._validate_and_parse(record)  # noqa: SLF001
        record = sink.preprocess_record(record, context)
        sink._singer_validate_message(record)  # noqa: SLF001
        sink.tally_record_read()
        sink.process_record(record, context)
        sink.record_counter_metric.increment()
        sink._after_process_record(context)  # noqa: SLF001
        if sink.is_full:
            self.drain_one(sink)
        self._handle_max_record_age()
        if stream_name not in self._lanes_tried:
            self._lanes_tried.add(stream_name)
            lane = self._record_lane(stream_name, sink)
            if lane is not None:
                self._reader.record_lanes[stream_name] = lane

    def _record_lane(self, stream_name: str, sink: Sink) -> t.Callable[[msgspec.Raw], bool] | None:
        """The reader's lane for a direct stream: the steps above, minus the generic decode.

        Args:
            stream_name: The stream.
            sink: Its sink (direct: no stream map, no SDK metadata properties).

        Returns:
            ``raw -> handled``, or None when the stream has no lane.
        """
        if not isinstance(sink, SfmcSink):
            return None
        loading_sink = sink
        take = loading_sink.record_lane()
        if take is None:
            return None
        sinks_active = self._sinks_active
        # Fixed for the sink's life (batch_size_rows is config); `is_full` recomputes it.
        max_size = loading_sink.max_size
        no_record: dict = {}  # the batch context does not depend on the record
        # The same objects for the sink's life, looked up once rather than per record.
        get_context = loading_sink._get_context  # noqa: SLF001
        tally_record_read = loading_sink.tally_record_read
        record_counter = loading_sink.record_counter_metric
        handle_max_record_age = self._handle_max_record_age
        clock = time.monotonic
        next_clock_check = clock()

        def lane(raw: msgspec.Raw) -> bool:
            nonlocal next_clock_check
            if sinks_active.get(stream_name) is not loading_sink:
                return False
            if not take(raw, get_context(no_record)):
                return False
            tally_record_read()
            record_counter.value += 1  # exact; only its clock (when to log) is read below
            # The SDK's _after_process_record only logs the batch context at DEBUG: skipped.
            if loading_sink.current_size >= max_size:
                self.drain_one(loading_sink)
            now = clock()
            if now >= next_clock_check:
                next_clock_check = now + _CLOCK_CHECK_SECONDS
                record_counter.increment(0)
                handle_max_record_age()
            return True

        return lane

    @property
    def _reader(self) -> LineNumberingReader:
        return t.cast("LineNumberingReader", self.message_reader)

    def _direct_sink(self, stream_name: str) -> Sink | None:
        maps = self.mapper.stream_maps.get(stream_name)
        sink = self._sinks_active.get(stream_name)
        direct = (
            sink is not None
            and maps is not None
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream_name
            and not maps[0].flattening_enabled
            and not sink.include_sdc_metadata_properties
        )
        if not direct or sink is None:
            self._direct_sinks.pop(stream_name, None)
            return None
        self._direct_sinks[stream_name] = sink
        return sink

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """Pick the sink class of a stream.

        Args:
            stream_name: Stream name after stream maps.

        Returns:
            The loading sink, or the counting sink for ignored streams.
        """
        settings = self.runtime.settings
        if stream_name not in settings.streams and settings.ignore_unconfigured_streams:
            return IgnoredStreamSink
        return SfmcSink

    def _write_state_message(self, state: dict) -> None:
        """Emit STATE; tap floats arrive as Decimal, which ``json.dumps`` cannot write.

        Args:
            state: The latest state.
        """
        sys.stdout.buffer.write(encode_json(state) + b"\n")
        sys.stdout.flush()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT, never emit STATE for rows SFMC has not confirmed.

        Args:
            signum: Signal number.
            frame: Current frame.
        """
        del frame
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

    def shutdown(self) -> None:
        """Release threads and connections."""
        self.runtime.pipeline.shutdown(wait=True, cancel_futures=True)
        self.runtime.executor.shutdown(wait=True, cancel_futures=True)
        self.runtime.client.transport.session.close()
        self.runtime.report.close()

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Add ``--test`` to the SDK's command line.

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
    ) -> None:
        """Run the target from the CLI, always ending with the summary.

        Args:
            about: Display package metadata and settings.
            about_format: Format for ``--about``.
            config: Config input from the CLI.
            file_input: Optional input file instead of stdin.
            test: Only check the connection and the configured keys.
        """
        PluginBase.invoke.__func__(cls, about=about, about_format=about_format)  # type: ignore[attr-defined]
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        if test:
            try:
                passed = report(check_connection(target.runtime.settings, target.runtime.client))
            finally:
                target.shutdown()
            raise SystemExit(0 if passed else 1)
        target.runtime.report.start_progress()
        failed = True
        try:
            with tuned_for_loading():
                target.listen(file_input)
            failed = False
        except TargetSfmcError as exc:
            target.logger.error("%s", exc)  # noqa: TRY400 - the sentence is the whole story
            raise SystemExit(1) from None
        finally:
            target.runtime.report.log_summary(failed=failed)
            target.shutdown()
