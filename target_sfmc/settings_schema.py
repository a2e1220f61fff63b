"""The settings users see: their JSON Schema (shown by ``--about``) and every default.

Each default is stated once, here; the schema and the settings objects both read it.
"""

from __future__ import annotations

from singer_sdk import typing as th

STREAM_TYPES = ("identify", "track", "api_event", "audience", "segment")

# Defaults of the settings.
DEFAULT_REQUESTS_PER_SECOND = 20
DEFAULT_MAX_CONCURRENT_REQUESTS = 48
DEFAULT_REQUEST_TIMEOUT_SECONDS = 120
DEFAULT_RETRY_MAX_ATTEMPTS = 8
DEFAULT_RETRY_BACKOFF_MS = 500
DEFAULT_ASYNC_TIMEOUT_SECONDS = 900
DEFAULT_ROW_ERROR_POLICY = "fail"
DEFAULT_HARD_DELETE = False
DEFAULT_ALLOW_EMPTY_MIRROR = False
DEFAULT_MIRROR_MAX_DELETE_RATIO = 0.5
DEFAULT_EXIT_ON_DELETE = False
DEFAULT_TOKEN_CACHE = True
DEFAULT_EXPECTED_PROCESSES = 1
DEFAULT_TEXT_LENGTH = 254
DEFAULT_DECIMAL_PRECISION = 18
DEFAULT_DECIMAL_SCALE = 4
# Defaults of the per-stream record properties.
DEFAULT_USER_ID_PROPERTIES = ("userId", "user_id")
DEFAULT_EMAIL_PROPERTY = "email"
DEFAULT_MESSAGE_ID_PROPERTIES = ("messageId", "message_id")
DEFAULT_AUDIENCE_PROPERTY = "audience"
DEFAULT_MEMBER_PROPERTY = "in_audience"


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
    th.Property(
        "journey_key",
        th.StringType,
        description=(
            "audience (with event_definition_key): joining fires the entry event, leaving takes "
            "the contact out of this journey. api_event (with exit_on_delete): the journey a "
            "deleted record's contact leaves."
        ),
    ),
    th.Property(
        "exit_on_delete",
        th.BooleanType,
        default=DEFAULT_EXIT_ON_DELETE,
        description=(
            "api_event: a record with _sdc_deleted_at takes its contact out of journey_key "
            "instead of firing the entry event."
        ),
    ),
    th.Property(
        "data_extension_name",
        th.StringType,
        description="Name of the Data Extension create_data_extensions creates (default: its key).",
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
        default=DEFAULT_REQUESTS_PER_SECOND,
        title="Requests per second",
        description=(
            "Ceiling on API calls per second for the SFMC account (client id + MID), shared by "
            "every process using it (see rate_limit_url), token calls included."
        ),
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1),
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        title="Max concurrent requests",
        description=(
            "Ceiling on requests in flight at once, per process. Below it, the number follows "
            "SFMC's latency: enough to keep requests_per_second busy (rate x latency, with "
            "headroom)."
        ),
    ),
    th.Property(
        "rate_limit_url",
        th.StringType,
        secret=True,
        title="Rate limit store URL",
        description=(
            "Where the processes of one SFMC account (client id + MID) share "
            "requests_per_second and the access token: redis://host:port/db (or rediss://) "
            "across machines, sqlite:///path for a local file elsewhere. Default: a local store "
            "in the user's cache directory, shared by the processes of this machine."
        ),
    ),
    th.Property(
        "token_cache",
        th.BooleanType,
        default=DEFAULT_TOKEN_CACHE,
        title="Token cache",
        description=(
            "Reuse a valid access token across runs and processes of the same client id + MID "
            "(through the rate limit store); false: each run requests its own."
        ),
    ),
    th.Property(
        "expected_processes",
        th.IntegerType(minimum=1),
        default=DEFAULT_EXPECTED_PROCESSES,
        title="Expected processes",
        description=(
            "How many processes share the account: when the rate limit store cannot be "
            "reached, this one paces itself at requests_per_second / expected_processes."
        ),
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
        default=DEFAULT_ROW_ERROR_POLICY,
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
        "hard_delete",
        th.BooleanType,
        default=DEFAULT_HARD_DELETE,
        title="Hard delete",
        description=(
            "A record with _sdc_deleted_at deletes its row (identify, track) or ends its "
            "audience membership, instead of being upserted. Contacts are never deleted."
        ),
    ),
    th.Property(
        "allow_empty_mirror",
        th.BooleanType,
        default=DEFAULT_ALLOW_EMPTY_MIRROR,
        title="Allow empty mirror",
        description=(
            "load_method 'overwrite': let a stream that sent no rows empty its Data Extension "
            "(otherwise the mirror refuses)."
        ),
    ),
    th.Property(
        "mirror_max_delete_ratio",
        th.NumberType(minimum=0, maximum=1),
        default=DEFAULT_MIRROR_MAX_DELETE_RATIO,
        title="Mirror max delete ratio",
        description=(
            "load_method 'overwrite': the mirror refuses to delete more than this share of a "
            "Data Extension's rows."
        ),
    ),
    th.Property(
        "run_report_path",
        th.StringType,
        title="Run report file",
        description=(
            "JSON file replaced (atomically) at the end of every run, failed ones included: "
            "start and end time (UTC), exit status, per-stream read/written/merged/skipped/"
            "rejected/deleted counts, API calls, retries, 429s, the last STATE emitted and the "
            "first error. Never secrets or row values."
        ),
    ),
    th.Property(
        "async_timeout_seconds",
        th.IntegerType(minimum=1),
        default=DEFAULT_ASYNC_TIMEOUT_SECONDS,
        title="Async timeout (s)",
        description="Longest wait for one async request to finish.",
    ),
    th.Property(
        "create_data_extensions",
        th.BooleanType,
        default=False,
        title="Create Data Extensions",
        description=(
            "Create a missing Data Extension from the stream's SCHEMA (Title Case columns, "
            "types from the schema, the stream's primary keys) before its first row."
        ),
    ),
    th.Property(
        "add_missing_fields",
        th.BooleanType,
        default=False,
        title="Add missing fields",
        description=(
            "Add a column for each attribute the stream sends that its Data Extension lacks; "
            "existing columns are never changed or dropped. Off: such attributes are not sent "
            "and are counted (ignored_attributes)."
        ),
    ),
    th.Property(
        "default_text_length",
        th.IntegerType(minimum=1, maximum=4000),
        default=DEFAULT_TEXT_LENGTH,
        title="Default Text length",
        description="Length of created Text columns for strings without maxLength.",
    ),
    th.Property(
        "default_decimal_precision",
        th.IntegerType(minimum=1, maximum=29),
        default=DEFAULT_DECIMAL_PRECISION,
        title="Default Decimal precision",
        description="Digits of created Decimal columns (JSON Schema 'number').",
    ),
    th.Property(
        "default_decimal_scale",
        th.IntegerType(minimum=0, maximum=29),
        default=DEFAULT_DECIMAL_SCALE,
        title="Default Decimal scale",
        description="Digits after the point of created Decimal columns without multipleOf.",
    ),
    th.Property(
        "data_extension_folder_id",
        th.IntegerType(minimum=1),
        title="Data Extension folder ID",
        description=(
            "Folder (category id) of created Data Extensions; default: the business unit's "
            "root Data Extensions folder."
        ),
    ),
    th.Property(
        "request_timeout_seconds",
        th.IntegerType(minimum=1),
        default=DEFAULT_REQUEST_TIMEOUT_SECONDS,
        title="Request timeout (s)",
        description="Read timeout of one HTTP request.",
    ),
    th.Property(
        "retry_max_attempts",
        th.IntegerType(minimum=1),
        default=DEFAULT_RETRY_MAX_ATTEMPTS,
        title="Retry attempts",
        description="Attempts per request for throttling, 5xx and network errors.",
    ),
    th.Property(
        "retry_backoff_ms",
        th.IntegerType(minimum=0),
        default=DEFAULT_RETRY_BACKOFF_MS,
        title="Retry backoff (ms)",
        description="First backoff step; doubles each retry (with jitter), capped at 30 s.",
    ),
).to_dict()
