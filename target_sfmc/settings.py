"""Settings as the target runs with them, and the checks no JSON Schema can express.

The schema users see and every default live in :mod:`target_sfmc.settings_schema`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from target_sfmc.budget import url_problem
from target_sfmc.mapping import CONTACT_KEY, parse_primary_keys
from target_sfmc.settings_schema import (
    DEFAULT_ALLOW_EMPTY_MIRROR,
    DEFAULT_ASYNC_TIMEOUT_SECONDS,
    DEFAULT_AUDIENCE_PROPERTY,
    DEFAULT_DECIMAL_PRECISION,
    DEFAULT_DECIMAL_SCALE,
    DEFAULT_EMAIL_PROPERTY,
    DEFAULT_EXIT_ON_DELETE,
    DEFAULT_EXPECTED_PROCESSES,
    DEFAULT_HARD_DELETE,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MEMBER_PROPERTY,
    DEFAULT_MESSAGE_ID_PROPERTIES,
    DEFAULT_MIRROR_MAX_DELETE_RATIO,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_REQUESTS_PER_SECOND,
    DEFAULT_RETRY_BACKOFF_MS,
    DEFAULT_RETRY_MAX_ATTEMPTS,
    DEFAULT_ROW_ERROR_POLICY,
    DEFAULT_TEXT_LENGTH,
    DEFAULT_TOKEN_CACHE,
    DEFAULT_USER_ID_PROPERTIES,
    STREAM_TYPES,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

LOGGER = logging.getLogger("target-sfmc")

SUBDOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9-]+$")
LEGACY_AUTH_URL = "https://auth.exacttargetapis.com"
LEGACY_REST_URL = "https://www.exacttargetapis.com"
LEGACY_SOAP_URL = "https://webservice.exacttarget.com"


def is_loopback_url(url: str) -> bool:
    """Tell whether a URL points at this machine.

    Args:
        url: An absolute URL.

    Returns:
        True for localhost and loopback addresses.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientSettings:
    """Connection settings taken from the target config."""

    client_id: str
    client_secret: str = field(repr=False)
    subdomain: str | None = None
    account_id: str | None = None
    auth_url: str | None = None
    rest_url: str | None = None
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    retry_max_attempts: int = DEFAULT_RETRY_MAX_ATTEMPTS
    retry_backoff_seconds: float = DEFAULT_RETRY_BACKOFF_MS / 1000
    # The account's budget store (None: the local one); may hold a password.
    rate_limit_url: str | None = field(default=None, repr=False)
    token_cache: bool = DEFAULT_TOKEN_CACHE
    expected_processes: int = DEFAULT_EXPECTED_PROCESSES

    @property
    def auth_base_url(self) -> str:
        """Base URL of the auth host."""
        if self.auth_url:
            return self.auth_url
        if self.subdomain:
            return f"https://{self.subdomain}.auth.marketingcloudapis.com"
        return LEGACY_AUTH_URL

    @property
    def uses_legacy_auth(self) -> bool:
        """Legacy v1 ``requestToken`` is used only without a subdomain."""
        return not self.subdomain

    def rest_base_url(self, token_rest_url: str | None) -> str:
        """Base URL of REST calls: the override, else the token's, else the subdomain's.

        Args:
            token_rest_url: ``rest_instance_url`` from the token response, if any.

        Returns:
            The base URL, without a trailing slash.
        """
        if self.rest_url:
            return self.rest_url.rstrip("/")
        if token_rest_url:
            return token_rest_url.rstrip("/")
        if self.subdomain:
            return f"https://{self.subdomain}.rest.marketingcloudapis.com"
        return LEGACY_REST_URL

    def soap_base_url(self, token_soap_url: str | None) -> str:
        """Base URL of SOAP calls: the token's, else the REST override's host, else the subdomain's.

        Args:
            token_soap_url: ``soap_instance_url`` from the token response, if any.

        Returns:
            The base URL, without a trailing slash (``/Service.asmx`` is appended).
        """
        if token_soap_url:
            return token_soap_url.rstrip("/")
        if self.rest_url:
            return self.rest_url.rstrip("/")
        if self.subdomain:
            return f"https://{self.subdomain}.soap.marketingcloudapis.com"
        return LEGACY_SOAP_URL


@dataclass(frozen=True)
class StreamSettings:
    """How one stream is loaded."""

    type: str
    data_extension_key: str | None = None
    primary_keys: tuple[str, ...] | None = None
    uuid_primary_key: bool = False
    event_definition_key: str | None = None
    user_id_properties: tuple[str, ...] = DEFAULT_USER_ID_PROPERTIES
    email_property: str = DEFAULT_EMAIL_PROPERTY
    message_id_properties: tuple[str, ...] = DEFAULT_MESSAGE_ID_PROPERTIES
    audience_property: str = DEFAULT_AUDIENCE_PROPERTY
    member_property: str = DEFAULT_MEMBER_PROPERTY
    journey_key: str | None = None
    exit_on_delete: bool = DEFAULT_EXIT_ON_DELETE
    data_extension_name: str | None = None


@dataclass(frozen=True)
class ConversionEvent:
    """A Segment track event loaded into a Data Extension."""

    event: str
    data_extension_key: str
    primary_keys: tuple[str, ...]
    uuid_primary_key: bool


@dataclass(frozen=True)
class DataExtensionSettings:
    """How Data Extensions are created and kept in step with the streams."""

    create: bool = False
    add_missing_fields: bool = False
    text_length: int = DEFAULT_TEXT_LENGTH
    decimal_precision: int = DEFAULT_DECIMAL_PRECISION
    decimal_scale: int = DEFAULT_DECIMAL_SCALE
    folder_id: int | None = None


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
    hard_delete: bool = DEFAULT_HARD_DELETE
    mirror: bool = False  # load_method 'overwrite'
    allow_empty_mirror: bool = DEFAULT_ALLOW_EMPTY_MIRROR
    mirror_max_delete_ratio: float = DEFAULT_MIRROR_MAX_DELETE_RATIO
    run_report_path: str | None = None
    data_extensions: DataExtensionSettings = DataExtensionSettings()


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
    errors += _journey_problems(name, kind, raw)
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
        user_id_properties=(user_id,) if user_id else DEFAULT_USER_ID_PROPERTIES,
        email_property=raw.get("email_property") or DEFAULT_EMAIL_PROPERTY,
        message_id_properties=(message_id,) if message_id else DEFAULT_MESSAGE_ID_PROPERTIES,
        audience_property=raw.get("audience_property") or DEFAULT_AUDIENCE_PROPERTY,
        member_property=raw.get("member_property") or DEFAULT_MEMBER_PROPERTY,
        journey_key=raw.get("journey_key") or None,
        exit_on_delete=bool(raw.get("exit_on_delete", DEFAULT_EXIT_ON_DELETE)),
        data_extension_name=raw.get("data_extension_name") or None,
    )
    return settings, errors


def _journey_problems(name: str, kind: Any, raw: Mapping[str, Any]) -> list[str]:
    """Journey settings only fit audience and api_event streams, in pairs."""
    journey, exits = raw.get("journey_key"), bool(raw.get("exit_on_delete"))
    if exits and kind != "api_event":
        return [f"Stream '{name}' ({kind}): 'exit_on_delete' is for api_event streams."]
    if exits and not journey:
        return [f"Stream '{name}' (api_event): 'exit_on_delete' needs 'journey_key'."]
    if journey and kind not in {"audience", "api_event"}:
        return [f"Stream '{name}' ({kind}): 'journey_key' is for audience and api_event streams."]
    if kind == "audience" and bool(journey) != bool(raw.get("event_definition_key")):
        both = "'journey_key' and 'event_definition_key' go together"
        why = "joining fires the entry event, leaving exits the journey"
        return [f"Stream '{name}' (audience): {both} ({why})."]
    return []


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
    rate_limit_url = config.get("rate_limit_url") or None
    if rate_limit_url is not None:
        problem = url_problem(str(rate_limit_url))
        if problem is not None:
            errors.append(problem)

    use_async = bool(config.get("use_async_api", False))
    streams: dict[str, StreamSettings] = {}
    for name, raw in (config.get("streams") or {}).items():
        stream, stream_errors = _stream_settings(name, raw, config)
        streams[name] = stream
        errors += stream_errors

    conversion_events = {
        str(item["event"]).strip().casefold(): ConversionEvent(
            event=str(item["event"]),
            data_extension_key=str(item["data_extension_key"]),
            primary_keys=parse_primary_keys(item.get("primary_keys")) or (CONTACT_KEY,),
            uuid_primary_key=bool(item.get("uuid_primary_key", False)),
        )
        for item in config.get("conversion_events") or []
    }
    api_events = {
        str(item["event"]).strip().casefold(): str(item["event_definition_key"])
        for item in config.get("api_events") or []
    }
    for key in list(api_events.values()) + [
        s.event_definition_key for s in streams.values() if s.event_definition_key
    ]:
        if "." in key:
            errors.append(
                f"Event definition key '{key}' contains a period, which SFMC does not allow."
            )
    sends_events = any(s.type == "api_event" or s.journey_key for s in streams.values())
    if use_async and (api_events or sends_events):
        errors.append(
            "API events cannot be sent with 'use_async_api' (SFMC batching rule): remove "
            "'api_events', api_event streams and audience journeys, or turn 'use_async_api' off."
        )

    client = ClientSettings(
        client_id=str(config.get("client_id", "")),
        client_secret=str(config.get("client_secret", "")),
        subdomain=subdomain,
        account_id=config.get("account_id") or None,
        auth_url=config.get("auth_url") or None,
        rest_url=config.get("rest_url") or None,
        requests_per_second=float(config.get("requests_per_second", DEFAULT_REQUESTS_PER_SECOND)),
        max_concurrent_requests=int(
            config.get("max_concurrent_requests", DEFAULT_MAX_CONCURRENT_REQUESTS)
        ),
        timeout_seconds=float(
            config.get("request_timeout_seconds", DEFAULT_REQUEST_TIMEOUT_SECONDS)
        ),
        retry_max_attempts=int(config.get("retry_max_attempts", DEFAULT_RETRY_MAX_ATTEMPTS)),
        retry_backoff_seconds=int(config.get("retry_backoff_ms", DEFAULT_RETRY_BACKOFF_MS)) / 1000,
        rate_limit_url=str(rate_limit_url) if rate_limit_url else None,
        token_cache=bool(config.get("token_cache", DEFAULT_TOKEN_CACHE)),
        expected_processes=int(config.get("expected_processes", DEFAULT_EXPECTED_PROCESSES)),
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
        skip_rejected_rows=config.get("row_error_policy", DEFAULT_ROW_ERROR_POLICY) == "skip",
        dead_letter_path=config.get("dead_letter_path") or None,
        async_timeout_seconds=float(
            config.get("async_timeout_seconds", DEFAULT_ASYNC_TIMEOUT_SECONDS)
        ),
        hard_delete=bool(config.get("hard_delete", DEFAULT_HARD_DELETE)),
        mirror=config.get("load_method") == "overwrite",
        allow_empty_mirror=bool(config.get("allow_empty_mirror", DEFAULT_ALLOW_EMPTY_MIRROR)),
        mirror_max_delete_ratio=float(
            config.get("mirror_max_delete_ratio", DEFAULT_MIRROR_MAX_DELETE_RATIO)
        ),
        run_report_path=config.get("run_report_path") or None,
        data_extensions=_data_extension_settings(config, errors),
    )
    return settings, errors


def _data_extension_settings(config: Mapping[str, Any], errors: list[str]) -> DataExtensionSettings:
    precision = int(config.get("default_decimal_precision", DEFAULT_DECIMAL_PRECISION))
    scale = int(config.get("default_decimal_scale", DEFAULT_DECIMAL_SCALE))
    if scale > precision:
        errors.append(
            "Setting 'default_decimal_scale' cannot be more than 'default_decimal_precision'."
        )
    folder = config.get("data_extension_folder_id")
    return DataExtensionSettings(
        create=bool(config.get("create_data_extensions", False)),
        add_missing_fields=bool(config.get("add_missing_fields", False)),
        text_length=int(config.get("default_text_length", DEFAULT_TEXT_LENGTH)),
        decimal_precision=precision,
        decimal_scale=scale,
        folder_id=int(folder) if folder is not None else None,
    )
