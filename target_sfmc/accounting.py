"""Where every record ended up: counts, dead letters, progress and the summary."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_sfmc.jsonio import encode_json

if TYPE_CHECKING:
    from target_sfmc.records import Attributes
    from target_sfmc.transport import ApiStats

LOGGER = logging.getLogger("target-sfmc.summary")
PROGRESS_INTERVAL_SECONDS = 10.0
_IGNORED_NAMES_SHOWN = 5


@dataclass
class StreamTally:
    """Outcome counts of one stream.

    Every record read has exactly one outcome: ``read == written + merged + skipped +
    rejected`` once nothing is pending. A Segment track that is also sent as a Journey event
    has its second delivery counted apart, in the ``extra_*`` counters.
    """

    read: int = 0
    written: int = 0
    merged: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    extra_written: int = 0
    extra_rejected: int = 0
    extra_skipped: int = 0
    contacts_failed: int = 0  # Contacts SFMC refused (their rows loaded all the same)
    # Attribute names the stream sends that are not sent to SFMC (each logged once).
    ignored_attributes: set[str] = field(default_factory=set)

    @property
    def accounted(self) -> int:
        """Deliveries with a final outcome."""
        return self.written + self.merged + self.rejected + sum(self.skipped.values())

    def describe(self) -> str:
        """One line for the log."""
        skipped = ", ".join(f"{reason}={n}" for reason, n in sorted(self.skipped.items()))
        pending = self.read - self.accounted
        text = (
            f"read={self.read} written={self.written} merged={self.merged} "
            f"skipped={sum(self.skipped.values())}"
            f"{f' ({skipped})' if skipped else ''} rejected={self.rejected}"
        )
        if self.extra_written or self.extra_rejected or self.extra_skipped:
            text += (
                f" (second deliveries: written={self.extra_written} "
                f"rejected={self.extra_rejected} skipped={self.extra_skipped})"
            )
        if self.contacts_failed:
            text += f" contacts_failed={self.contacts_failed}"
        if self.ignored_attributes:
            names = sorted(self.ignored_attributes)
            shown = ", ".join(names[:_IGNORED_NAMES_SHOWN])
            more = ", …" if len(names) > _IGNORED_NAMES_SHOWN else ""
            text += f" ignored_attributes={len(names)} ({shown}{more})"
        if pending:
            text += f" unconfirmed={pending}"
        return text


class DeadLetterWriter:
    """Appends one JSON line per skipped or rejected row; safe to call from many threads."""

    def __init__(self, path: str) -> None:
        """Open (append) the dead-letter file.

        Args:
            path: File path.
        """
        self.path = path
        self._lock = threading.Lock()
        parent = os.path.dirname(os.path.abspath(path))  # noqa: PTH100, PTH120
        os.makedirs(parent, exist_ok=True)  # noqa: PTH103
        self._file = open(path, "ab")  # noqa: SIM115, PTH123

    def write(self, entries: list[dict[str, Any]]) -> None:
        """Write entries and make them durable before returning.

        Args:
            entries: Dead-letter entries.
        """
        if not entries:
            return
        data = b"".join(encode_json(entry) + b"\n" for entry in entries)
        with self._lock:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


class RunReport:
    """Thread-safe accounting of the whole run."""

    def __init__(self, stats: ApiStats, dead_letter_path: str | None) -> None:
        """Create the report.

        Args:
            stats: The client's request counters.
            dead_letter_path: Optional dead-letter file.
        """
        self.stats = stats
        self.started = time.monotonic()
        self.streams: dict[str, StreamTally] = {}
        self._lock = threading.Lock()
        self.dead_letters = DeadLetterWriter(dead_letter_path) if dead_letter_path else None
        self._warned: set[tuple[str, str]] = set()
        self._confirmed = 0  # rows SFMC confirmed so far (progress only; counted as they land)
        self._stop = threading.Event()
        self._progress_thread: threading.Thread | None = None

    def tally(self, stream: str) -> StreamTally:
        """The tally of a stream (created on first use)."""
        with self._lock:
            tally = self.streams.get(stream)
            if tally is None:
                tally = self.streams[stream] = StreamTally()
            return tally

    def count(self, stream: str, **changes: int) -> None:
        """Add to a stream's counters.

        Args:
            stream: Stream name.
            **changes: Counter name -> increment (read, written, merged, rejected, extra_*).
        """
        tally = self.tally(stream)
        with self._lock:
            for name, value in changes.items():
                setattr(tally, name, getattr(tally, name) + value)

    def count_skip(self, stream: str, reason: str, n: int = 1) -> None:
        """Count skipped deliveries."""
        tally = self.tally(stream)
        with self._lock:
            tally.skipped[reason] += n

    def warn_once(self, stream: str, key: str, message: str, *args: Any) -> None:
        """Log a warning the first time only.

        Args:
            stream: Stream name.
            key: Identity of the warning.
            message: Log format string.
            *args: Log arguments.
        """
        with self._lock:
            if (stream, key) in self._warned:
                return
            self._warned.add((stream, key))
        LOGGER.warning(message, *args)

    def ignore_attribute(self, stream: str, name: str, why: str) -> None:
        """Note an attribute the stream sends that is not sent to SFMC; warn once per name.

        Args:
            stream: Stream name.
            name: How the summary shows the attribute (a name, never a value).
            why: Why it is not sent.
        """
        tally = self.tally(stream)
        with self._lock:
            if name in tally.ignored_attributes:
                return
            tally.ignored_attributes.add(name)
        LOGGER.warning("Stream '%s': attribute %s is not sent to SFMC (%s).", stream, name, why)

    def dead_letter(self, entries: list[dict[str, Any]]) -> None:
        """Write dead-letter entries when a dead-letter file is configured."""
        if self.dead_letters is not None:
            self.dead_letters.write(entries)

    @staticmethod
    def dead_letter_entry(
        stream: str,
        destination: str | None,
        reason: str,
        row: Attributes,
        message: str = "",
        error_code: Any = None,
    ) -> dict[str, Any]:
        """Build one dead-letter line.

        Returns:
            The entry.
        """
        return {
            "stream": stream,
            "data_extension_key": destination,
            "reason": reason,
            "error_code": error_code,
            "message": message,
            "row": row,
            "record_time": dt.datetime.now(dt.UTC).isoformat(),
        }

    def totals(self) -> StreamTally:
        """Sum over all streams."""
        total = StreamTally()
        with self._lock:
            for stream, tally in self.streams.items():
                total.read += tally.read
                total.written += tally.written
                total.merged += tally.merged
                total.rejected += tally.rejected
                total.skipped.update(tally.skipped)
                total.extra_written += tally.extra_written
                total.extra_rejected += tally.extra_rejected
                total.extra_skipped += tally.extra_skipped
                total.contacts_failed += tally.contacts_failed
                total.ignored_attributes |= {
                    f"{name} ({stream})" for name in tally.ignored_attributes
                }
        return total

    def start_progress(self) -> None:
        """Log progress every 10 s from a background thread until :meth:`stop_progress`."""
        if self._progress_thread is not None:
            return
        self._progress_thread = threading.Thread(
            target=self._progress_loop, name="target-sfmc-progress", daemon=True
        )
        self._progress_thread.start()

    def note_confirmed(self, rows: int) -> None:
        """Count rows SFMC just confirmed, for the progress line.

        Args:
            rows: Confirmed rows.
        """
        with self._lock:
            self._confirmed += rows

    def stop_progress(self) -> None:
        """Stop the progress thread."""
        self._stop.set()

    def _progress_loop(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL_SECONDS):
            total = self.totals()
            elapsed = max(time.monotonic() - self.started, 1e-9)
            LOGGER.info(
                "Progress: %d records read, %d rows confirmed by SFMC, %.0f rows/s, %d API calls.",
                total.read,
                self._confirmed,
                self._confirmed / elapsed,
                self.stats.calls,
            )

    def log_summary(self, *, failed: bool) -> None:
        """Log the per-stream and total summary (also after a failure)."""
        self.stop_progress()
        elapsed = time.monotonic() - self.started
        with self._lock:
            streams = dict(self.streams)
        for name, tally in sorted(streams.items()):
            LOGGER.info("Summary for stream '%s': %s", name, tally.describe())
        LOGGER.info(
            "Summary%s: %s api_calls=%d retries=%d throttled_429=%d elapsed=%.1fs",
            " (run failed)" if failed else "",
            self.totals().describe(),
            self.stats.calls,
            self.stats.retries,
            self.stats.throttled,
            elapsed,
        )
        self.close()

    def close(self) -> None:
        """Close the dead-letter file (safe to call more than once)."""
        if self.dead_letters is not None:
            self.dead_letters.close()
