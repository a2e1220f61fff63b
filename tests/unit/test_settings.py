"""Cross-field configuration checks of ``parse_settings``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from target_sfmc.errors import without_quoted_values
from target_sfmc.settings import parse_settings

SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"  # 28 characters starting with "mc"


def good_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "client_id": "client-id",
        "client_secret": "client-secret",
        "subdomain": SUBDOMAIN,
        "account_id": "123456",
        "identify_data_extension_key": "IDENTIFY",
        "conversion_events": [
            {"event": "Order Completed", "data_extension_key": "ORDERS"},
        ],
        "api_events": [{"event": "Signed Up", "event_definition_key": "APIEvent-1"}],
        "streams": {
            "users": {"type": "identify"},
            "orders": {"type": "track", "data_extension_key": "ORDERS", "primary_keys": "id"},
            "journeys": {"type": "api_event", "event_definition_key": "APIEvent-2"},
            "audiences": {"type": "audience"},
            "segment_events": {"type": "segment"},
        },
    }
    config.update(overrides)
    return config


def assert_one_sentence(errors: list[str], *needles: str) -> None:
    assert len(errors) == 1, errors
    message = errors[0]
    assert message[:1].isupper()
    assert message.endswith(".")
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_good_config_has_no_errors() -> None:
    settings, errors = parse_settings(good_config())
    assert errors == []
    assert settings.identify_data_extension_key == "IDENTIFY"
    assert settings.create_contacts is True
    assert settings.use_async_api is False
    assert set(settings.streams) == {"users", "orders", "journeys", "audiences", "segment_events"}
    assert settings.streams["users"].data_extension_key == "IDENTIFY"
    assert settings.streams["orders"].primary_keys == ("Id",)
    assert settings.client.account_id == "123456"


def test_minimal_config_has_no_errors() -> None:
    _, errors = parse_settings({"client_id": "a", "client_secret": "b", "subdomain": SUBDOMAIN})
    assert errors == []


def test_good_subdomain_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse_settings(good_config())
    assert not [r for r in caplog.records if "subdomain" in r.getMessage()]


def test_unusual_subdomain_warns_but_is_accepted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _, errors = parse_settings(good_config(subdomain="my-tenant"))
    assert errors == []
    assert any("subdomain" in r.getMessage() for r in caplog.records)


def test_missing_subdomain_warns_about_legacy_endpoints(caplog: pytest.LogCaptureFixture) -> None:
    config = good_config()
    del config["subdomain"]
    with caplog.at_level(logging.WARNING):
        settings, errors = parse_settings(config)
    assert errors == []
    assert settings.client.uses_legacy_auth
    assert any("legacy" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "subdomain",
    [
        "mc.evil.com",
        "evil.com/x?",
        "mc123@attacker",
        "mc 123",
        "mc123/",
        "mc_123",
        "mc123\n",
        "mc123\nHost: evil",
        "mc\u0131\u0131",
    ],
    ids=[
        "dot",
        "path",
        "at",
        "space",
        "slash",
        "underscore",
        "trailing-newline",
        "newline-header",
        "unicode",
    ],
)
def test_bad_subdomain_is_one_error(subdomain: str) -> None:
    _, errors = parse_settings(good_config(subdomain=subdomain))
    assert_one_sentence(errors, "subdomain")


@pytest.mark.parametrize("name", ["auth_url", "rest_url"])
@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://10.0.0.5:8080",
        "http://localhost.evil.com",
        "http://127.0.0.1.nip.io",
    ],
)
def test_http_non_loopback_url_is_one_error(name: str, url: str) -> None:
    _, errors = parse_settings(good_config(**{name: url}))
    assert_one_sentence(errors, name, "https")


@pytest.mark.parametrize("name", ["auth_url", "rest_url"])
@pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "https://"])
def test_non_http_url_is_one_error(name: str, url: str) -> None:
    _, errors = parse_settings(good_config(**{name: url}))
    assert_one_sentence(errors, name)


@pytest.mark.parametrize("name", ["auth_url", "rest_url"])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost:9000/base",
        "http://[::1]:8080",
        "http://127.5.5.5",
        "https://example.com",
        "https://example.com:8443/prefix",
    ],
)
def test_loopback_http_and_https_urls_are_allowed(name: str, url: str) -> None:
    _, errors = parse_settings(good_config(**{name: url}))
    assert errors == []


def test_async_with_api_events_is_one_error() -> None:
    config = good_config(use_async_api=True)
    config["streams"] = {"users": {"type": "identify"}}
    _, errors = parse_settings(config)
    assert_one_sentence(errors, "use_async_api")


def test_async_with_api_event_stream_is_one_error() -> None:
    config = good_config(use_async_api=True)
    del config["api_events"]
    config["streams"] = {"journeys": {"type": "api_event", "event_definition_key": "APIEvent-2"}}
    _, errors = parse_settings(config)
    assert_one_sentence(errors, "use_async_api")


def test_async_without_api_events_is_fine_and_turns_contacts_off() -> None:
    config = good_config(use_async_api=True)
    del config["api_events"]
    del config["streams"]["journeys"]
    settings, errors = parse_settings(config)
    assert errors == []
    assert settings.use_async_api is True
    assert settings.create_contacts is False


def test_do_not_create_contacts_turns_contacts_off() -> None:
    settings, errors = parse_settings(good_config(do_not_create_or_update_contacts=True))
    assert errors == []
    assert settings.create_contacts is False


def test_track_without_data_extension_key_is_one_error() -> None:
    _, errors = parse_settings(good_config(streams={"orders": {"type": "track"}}))
    assert_one_sentence(errors, "orders", "data_extension_key")


def test_api_event_without_event_definition_key_is_one_error() -> None:
    _, errors = parse_settings(good_config(streams={"journeys": {"type": "api_event"}}))
    assert_one_sentence(errors, "journeys", "event_definition_key")


def test_identify_without_any_de_key_is_one_error() -> None:
    config = good_config(streams={"users": {"type": "identify"}})
    del config["identify_data_extension_key"]
    _, errors = parse_settings(config)
    assert_one_sentence(errors, "users")


@pytest.mark.parametrize("kind", ["page", "Identify", "", "tracks"])
def test_unknown_stream_type_is_one_error(kind: str) -> None:
    _, errors = parse_settings(good_config(streams={"weird": {"type": kind}}))
    assert_one_sentence(errors, "weird", "type")


def test_api_events_key_with_a_period_is_one_error() -> None:
    config = good_config(api_events=[{"event": "Signed Up", "event_definition_key": "API.Event"}])
    _, errors = parse_settings(config)
    assert_one_sentence(errors, "API.Event", "period")


def test_stream_event_key_with_a_period_is_one_error() -> None:
    config = good_config(
        streams={"journeys": {"type": "api_event", "event_definition_key": "Journey.Entry"}}
    )
    _, errors = parse_settings(config)
    assert_one_sentence(errors, "Journey.Entry", "period")


def test_every_problem_is_reported() -> None:
    config = good_config(
        subdomain="bad.host",
        auth_url="http://example.com",
        streams={"a": {"type": "track"}, "b": {"type": "nope"}},
    )
    _, errors = parse_settings(config)
    assert len(errors) == 4


def test_stream_property_overrides() -> None:
    config = good_config(
        streams={
            "orders": {
                "type": "track",
                "data_extension_key": "ORDERS",
                "primary_keys": ["order_id", "line"],
                "user_id_property": "uid",
                "email_property": "mail",
                "message_id_property": "mid",
                "uuid_primary_key": True,
            },
            "aud": {
                "type": "audience",
                "audience_property": "segment_name",
                "member_property": "member",
            },
        }
    )
    settings, errors = parse_settings(config)
    assert errors == []
    orders = settings.streams["orders"]
    assert orders.primary_keys == ("Order Id", "Line")
    assert orders.user_id_properties == ("uid",)
    assert orders.email_property == "mail"
    assert orders.message_id_properties == ("mid",)
    assert orders.uuid_primary_key is True
    aud = settings.streams["aud"]
    assert aud.audience_property == "segment_name"
    assert aud.member_property == "member"
    assert aud.data_extension_key == "IDENTIFY"


def test_conversion_and_api_events_are_case_insensitive_keys() -> None:
    config = good_config(
        conversion_events=[
            {
                "event": "Order COMPLETED",
                "data_extension_key": "ORDERS",
                "primary_keys": "order_id, sku",
            },
            {"event": "Cart Viewed", "data_extension_key": "CARTS", "uuid_primary_key": True},
        ],
    )
    settings, errors = parse_settings(config)
    assert errors == []
    assert settings.conversion_events["order completed"].primary_keys == ("Order Id", "Sku")
    assert settings.conversion_events["cart viewed"].primary_keys == ("Contact Key",)
    assert settings.conversion_events["cart viewed"].uuid_primary_key is True
    assert settings.api_events == {"signed up": "APIEvent-1"}


def test_row_error_policy_and_client_settings() -> None:
    settings, errors = parse_settings(
        good_config(
            row_error_policy="skip",
            requests_per_second=7,
            max_concurrent_requests=2,
            dead_letter_path="/tmp/dead.jsonl",  # noqa: S108
        )
    )
    assert errors == []
    assert settings.skip_rejected_rows is True
    assert settings.dead_letter_path == "/tmp/dead.jsonl"  # noqa: S108
    assert settings.client.requests_per_second == 7
    assert settings.client.max_concurrent_requests == 2
    assert settings.client.auth_base_url == f"https://{SUBDOMAIN}.auth.marketingcloudapis.com"


def test_secret_is_not_in_any_error() -> None:
    config = good_config(
        client_secret="s3cr3t-value",
        subdomain="bad.host",
        rest_url="http://example.com",
        streams={"x": {"type": "bogus"}},
    )
    _, errors = parse_settings(config)
    assert errors
    assert all("s3cr3t-value" not in e for e in errors)


def test_quoted_values_are_hidden_from_logged_messages():
    message = "Contact 'ada@example.com' is not active. The duplicate key value is (u:1)."
    hidden = without_quoted_values(message)
    assert "ada@example.com" not in hidden
    assert "u:1" not in hidden
    assert hidden == "Contact '…' is not active. The duplicate key value is (…)."
    column_message = "Email: The value for column [Email] is not a valid email address."
    assert without_quoted_values(column_message) == column_message


def test_the_sdk_log_level_variable_is_no_unknown_setting_but_a_misspelling_of_it_is() -> None:
    from target_sfmc.settings_checks import check_environment  # noqa: PLC0415

    properties = {"client_id": {"type": ["string"]}}
    environ = {"TARGET_SFMC_LOGLEVEL": "DEBUG", "TARGET_SFMC_CLIENT_ID": "c", "LOGLEVEL": "INFO"}
    assert check_environment(properties, "TARGET_SFMC_", environ) == []
    misspelt = check_environment(properties, "TARGET_SFMC_", {"TARGET_SFMC_LOG_LEVEL": "DEBUG"})
    assert misspelt == ["Environment variable TARGET_SFMC_LOG_LEVEL is not a setting."]
