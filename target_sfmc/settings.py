"""Settings: the JSON Schema users see (SPEC §2, §3) and the checks no schema can express."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from singer_sdk import typing as th

from target_sfmc.client import ClientSettings, is_loopback_url
from target_sfmc.mapping import parse_primary_keys

if TYPE_CHECKING:
    from collections.abc import Mapping

LOGGER = logging.getLogger("target-sfmc")

STREAM_TYPES = ("identify", "track", "api_event", "audience", "segment")
SUBDOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9-]+$")

_PRIMARY_KEYS = th.CustomType(
    {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": 'Comma-separated string ("Contact Key,Product Id") or list of names.',
    }
)

STREAM_SETTINGS = th.ObjectType(
    th.Property(
        "type",
        th.StringType(allowed_values=list(STREAM_TYPES)),
        required=True,
        description="How records are loaded: identify, track, api_event, audience or segment.",
    ),
    th.Property(
        "data_extension_key",
        th.StringType,
        description="External key of the target Data Extension (required for track).",
    ),
    th.Property("primary_keys", _PRIMARY_KEYS, description="Track DE primary keys."),
    th.Property(
        "uuid_primary_key",
        th.BooleanType,
        default=False,
        description="Track: primary key 'Uuid' = message id (or a deterministic UUID).",
    ),
    th.Property(
        "event_definition_key",
        th.StringType,
        description="api_event: the Journey entry event definition key.",
    ),
    th.Property("user_id_property", th.StringType, description="Field holding the user id."),
    th.Property("email_property", th.StringType, description="Field holding the email."),
    th.Property("message_id_property", th.StringType, description="Field holding the message id."),
    th.Property(
        "audience_property", th.StringType, description="audience: field naming the audience."
    ),
    th.Property(
        "member_property", th.StringType, description="audience: boolean membership field."
    ),
    additional_properties=False,
)

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType(min_length=1),
        required=True,
        title="Client ID",
        description="Client id of the SFMC installed package (API integration).",
    ),
    th.Property(
        "client_secret",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="Client Secret",
        description="Client secret of the SFMC installed package.",
    ),
    th.Property(
        "subdomain",
        th.StringType,
        title="Subdomain",
        description=(
            "The 28-character tenant subdomain (starts with 'mc'). Without it the legacy "
            "ExactTarget endpoints are used."
        ),
    ),
    th.Property(
        "account_id",
        th.StringType,
        title="Account ID (MID)",
        description="MID of the business unit to load into.",
    ),
    th.Property(
        "auth_url",
        th.StringType,
        title="Auth URL override",
        description="Base URL of the auth host (token path appended); https unless loopback.",
    ),
    th.Property(
        "rest_url",
        th.StringType,
        title="REST URL override",
        description="Base URL for REST calls; https unless loopback. Default: from the token.",
    ),
    th.Property(
        "requests_per_second",
        th.IntegerType(minimum=1),
        default=20,
        title="Requests per second",
        description="Ceiling on API calls per second for the whole process, token calls included.",
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1),
        default=4,
        title="Max concurrent requests",
        description="Requests in flight at once.",
    ),
    th.Property(
        "use_async_api",
        th.BooleanType,
        default=False,
        title="Use async API (batching)",
        description=(
            "Load Data Extensions through SFMC's asynchronous API: rows go out while reading, "
            "batch_size_rows rows per request at most (default: what fits ~4 MB). Contact "
            "creation is off and API events are not allowed in this mode."
        ),
    ),
    th.Property(
        "do_not_create_or_update_contacts",
        th.BooleanType,
        default=False,
        title="Do not create or update contacts",
        description="Identify upserts the Data Extension but does not call the Contacts API.",
    ),
    th.Property(
        "identify_data_extension_key",
        th.StringType,
        title="Identify Data Extension key",
        description="External key of the Identify Data Extension (primary key 'Contact Key').",
    ),
    th.Property(
        "conversion_events",
        th.ArrayType(
            th.ObjectType(
                th.Property("event", th.StringType, required=True),
                th.Property("data_extension_key", th.StringType, required=True),
                th.Property("primary_keys", _PRIMARY_KEYS),
                th.Property("uuid_primary_key", th.BooleanType),
            )
        ),
        title="Conversion events",
        description="Segment-format streams: track events upserted into a Data Extension.",
    ),
    th.Property(
        "api_events",
        th.ArrayType(
            th.ObjectType(
                th.Property("event", th.StringType, required=True),
                th.Property("event_definition_key", th.StringType, required=True),
            )
        ),
        title="API events",
        description="Segment-format streams: track events sent as Journey entry events.",
    ),
    th.Property(
        "streams",
        th.ObjectType(additional_properties=STREAM_SETTINGS),
        title="Streams",
        description="Stream name (after stream maps) -> how its records are loaded.",
    ),
    th.Property(
        "ignore_unconfigured_streams",
        th.BooleanType,
        default=False,
        title="Ignore unconfigured streams",
        description="Skip (count, warn once) streams not in 'streams' instead of failing.",
    ),
    th.Property(
        "row_error_policy",
        th.StringType(allowed_values=["fail", "skip"]),
        default="fail",
        title="Row error policy",
        description="'fail': a rejected row fails the run after its batch; 'skip': go on.",
    ),
    th.Property(
        "dead_letter_path",
        th.StringType,
        title="Dead-letter file",
        description="JSONL file that receives every skipped or rejected row.",
    ),
    th.Property(
        "async_timeout_seconds",
        th.IntegerType(minimum=1),
        default=900,
        title="Async timeout (s)",
        description="Longest wait for one async request to finish.",
    ),
    th.Property(
        "request_timeout_seconds",
        th.IntegerType(minimum=1),
        default=120,
        title="Request timeout (s)",
        description="Read timeout of one HTTP request.",
    ),
    th.Property(
        "retry_max_attempts",
        th.IntegerType(minimum=1),
        default=8,
        title="Retry attempts",
        description="Attempts per request for throttling, 5xx and network errors.",
    ),
    th.Property(
        "retry_backoff_ms",
        th.IntegerType(minimum=0),
        default=500,
        title="Retry backoff (ms)",
        description="First backoff step; doubles each retry (with jitter), capped at 30 s.",
    ),
).to_dict()


@dataclass(frozen=True)
class StreamSettings:
    """How one stream is loaded."""

    type: str
    data_extension_key: str | None = None
    primary_keys: tuple[str, ...] | None = None
    uuid_primary_key: bool = False
    event_definition_key: str | None = None
    user_id_properties: tuple[str, ...] = ("userId", "user_id")
    email_property: str = "email"
    message_id_properties: tuple[str, ...] = ("messageId", "message_id")
    audience_property: str = "audience"
    member_property: str = "in_audience"


@dataclass(frozen=True)
class ConversionEvent:
    """A Segment track event loaded into a Data Extension."""

    event: str
    data_extension_key: str
    primary_keys: tuple[str, ...]
    uuid_primary_key: bool


@dataclass(frozen=True)
class TargetSettings:
    """Settings in the shape the sinks use."""

    client: ClientSettings
    use_async_api: bool
    create_contacts: bool
    identify_data_extension_key: str | None
    conversion_events: Mapping[str, ConversionEvent]
    api_events: Mapping[str, str]
    streams: Mapping[str, StreamSettings]
    ignore_unconfigured_streams: bool
    skip_rejected_rows: bool
    dead_letter_path: str | None
    async_timeout_seconds: float


def _check_url(name: str, url: str | None) -> list[str]:
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return [f"Setting '{name}' must be an absolute http(s) URL."]
    if parts.scheme != "https" and not is_loopback_url(url):
        return [f"Setting '{name}' must use https unless it points at a loopback address."]
    return []


def _stream_settings(
    name: str, raw: Mapping[str, Any], config: Mapping[str, Any]
) -> tuple[StreamSettings, list[str]]:
    errors: list[str] = []
    kind = raw.get("type")
    if kind not in STREAM_TYPES:
        errors.append(f"Stream '{name}' has type {kind!r}; use one of: {', '.join(STREAM_TYPES)}.")
    de_key = raw.get("data_extension_key")
    if kind in {"identify", "audience"} and not (
        de_key or config.get("identify_data_extension_key")
    ):
        errors.append(
            f"Stream '{name}' ({kind}) needs 'data_extension_key' or 'identify_data_extension_key'."
        )
    if kind == "track" and not de_key:
        errors.append(f"Stream '{name}' (track) needs 'data_extension_key'.")
    if kind == "api_event" and not raw.get("event_definition_key"):
        errors.append(f"Stream '{name}' (api_event) needs 'event_definition_key'.")
    primary_keys = parse_primary_keys(raw.get("primary_keys")) if raw.get("primary_keys") else None
    user_id = raw.get("user_id_property")
    message_id = raw.get("message_id_property")
    settings = StreamSettings(
        type=str(kind),
        data_extension_key=de_key
        or (
            config.get("identify_data_extension_key") if kind in {"identify", "audience"} else None
        ),
        primary_keys=primary_keys,
        uuid_primary_key=bool(raw.get("uuid_primary_key", False)),
        event_definition_key=raw.get("event_definition_key"),
        user_id_properties=(user_id,) if user_id else ("userId", "user_id"),
        email_property=raw.get("email_property") or "email",
        message_id_properties=(message_id,) if message_id else ("messageId", "message_id"),
        audience_property=raw.get("audience_property") or "audience",
        member_property=raw.get("member_property") or "in_audience",
    )
    return settings, errors


def parse_settings(config: Mapping[str, Any]) -> tuple[TargetSettings, list[str]]:
    """Turn a validated config into settings, collecting every cross-field problem.

    Args:
        config: The target config (already checked against :data:`CONFIG_SCHEMA`).

    Returns:
        The settings and a list of one-sentence errors (empty when the config is usable).
    """
    errors: list[str] = []
    subdomain = config.get("subdomain") or None
    if subdomain is not None:
        if not SUBDOMAIN_PATTERN.fullmatch(subdomain):
            errors.append("Setting 'subdomain' may contain only letters, digits and '-'.")
        elif len(subdomain) != 28 or not subdomain.startswith("mc"):  # noqa: PLR2004
            LOGGER.warning(
                "Setting 'subdomain' is usually 28 characters starting with 'mc'; check it if "
                "authentication fails."
            )
    else:
        LOGGER.warning(
            "No 'subdomain' set: using the legacy ExactTarget endpoints, which newer installed "
            "packages cannot use."
        )
    errors += _check_url("auth_url", config.get("auth_url"))
    errors += _check_url("rest_url", config.get("rest_url"))

    use_async = bool(config.get("use_async_api", False))
    streams: dict[str, StreamSettings] = {}
    for name, raw in (config.get("streams") or {}).items():
        stream, stream_errors = _stream_settings(name, raw, config)
        streams[name] = stream
        errors += stream_errors

    conversion_events = {
        str(item["event"]).casefold(): ConversionEvent(
            event=str(item["event"]),
            data_extension_key=str(item["data_extension_key"]),
            primary_keys=parse_primary_keys(item.get("primary_keys")) or ("Contact Key",),
            uuid_primary_key=bool(item.get("uuid_primary_key", False)),
        )
        for item in config.get("conversion_events") or []
    }
    api_events = {
        str(item["event"]).casefold(): str(item["event_definition_key"])
        for item in config.get("api_events") or []
    }
    for key in list(api_events.values()) + [
        s.event_definition_key for s in streams.values() if s.event_definition_key
    ]:
        if "." in key:
            errors.append(
                f"Event definition key '{key}' contains a period, which SFMC does not allow."
            )
    if use_async and (api_events or any(s.type == "api_event" for s in streams.values())):
        errors.append(
            "API events cannot be sent with 'use_async_api' (SFMC batching rule): remove "
            "'api_events' and api_event streams, or turn 'use_async_api' off."
        )

    client = ClientSettings(
        client_id=str(config.get("client_id", "")),
        client_secret=str(config.get("client_secret", "")),
        subdomain=subdomain,
        account_id=config.get("account_id") or None,
        auth_url=config.get("auth_url") or None,
        rest_url=config.get("rest_url") or None,
        requests_per_second=float(config.get("requests_per_second", 20)),
        max_concurrent_requests=int(config.get("max_concurrent_requests", 4)),
        timeout_seconds=float(config.get("request_timeout_seconds", 120)),
        retry_max_attempts=int(config.get("retry_max_attempts", 8)),
        retry_backoff_seconds=int(config.get("retry_backoff_ms", 500)) / 1000,
    )
    settings = TargetSettings(
        client=client,
        use_async_api=use_async,
        create_contacts=not use_async and not config.get("do_not_create_or_update_contacts", False),
        identify_data_extension_key=config.get("identify_data_extension_key") or None,
        conversion_events=conversion_events,
        api_events=api_events,
        streams=streams,
        ignore_unconfigured_streams=bool(config.get("ignore_unconfigured_streams", False)),
        skip_rejected_rows=config.get("row_error_policy", "fail") == "skip",
        dead_letter_path=config.get("dead_letter_path") or None,
        async_timeout_seconds=float(config.get("async_timeout_seconds", 900)),
    )
    return settings, errors
