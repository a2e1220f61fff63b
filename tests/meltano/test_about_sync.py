"""`meltano.yml` mirrors `target-sfmc --about --format=json` (fast: no Meltano needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

# JSON Schema type -> the Meltano `kind` that fits it.
KIND_FOR_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}
# Capabilities the Meltano schema knows; `validate-records` is SDK-only and must stay out.
MELTANO_LOADER_CAPABILITIES = {
    "about",
    "stream-maps",
    "activate-version",
    "batch",
    "soft-delete",
    "hard-delete",
    "datatype-failsafe",
    "schema-flattening",
    "structured-logging",
}


@cache
def about() -> dict[str, Any]:
    script = Path(sys.executable).with_name("target-sfmc")  # the console script users run
    command = [str(script)] if script.exists() else [sys.executable, "-m", "target_sfmc"]
    proc = subprocess.run(
        [*command, "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
    )
    return json.loads(proc.stdout)


def schema_properties() -> dict[str, dict[str, Any]]:
    return about()["settings"]["properties"]


@cache
def project() -> dict[str, Any]:
    return yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))


def plugin(kind: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in project()["plugins"][kind] if p["name"] == name]
    return found


def loader() -> dict[str, Any]:
    return plugin("loaders", "target-sfmc")


def loader_settings() -> dict[str, dict[str, Any]]:
    settings = loader()["settings"]
    names = [s["name"] for s in settings]
    assert len(names) == len(set(names)), f"duplicate settings: {names}"
    return {s["name"]: s for s in settings}


def expected_kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "options"
    types = [t for t in prop.get("type") or [] if t != "null"]
    if len(types) != 1:
        return "object"  # anyOf / oneOf / untyped: only an object setting can carry it
    return KIND_FOR_TYPE[types[0]]


def test_project_header() -> None:
    data = project()
    assert data["requires_meltano"] == ">=4.0"
    assert "version" not in data  # deprecated in Meltano 4
    assert data["default_environment"] == "dev"
    assert data["project_id"]
    assert "dev" in {env["name"] for env in data["environments"]}


def test_plugins_are_complete_custom_plugins() -> None:
    # Meltano Hub is not reachable from CI: every plugin must be fully described here.
    for kind in ("extractors", "loaders"):
        for item in project()["plugins"][kind]:
            for key in ("namespace", "pip_url", "executable", "capabilities"):
                assert item.get(key), f"{item['name']} lacks {key}"
    tap = plugin("extractors", "tap-jsonl")
    assert tap["pip_url"] == "tap-jsonl==0.3.1"
    assert {"catalog", "discover", "state"} <= set(tap["capabilities"])
    target = loader()
    assert target["namespace"] == "target_sfmc"
    assert target["executable"] == "target-sfmc"


def test_loader_capabilities_are_the_targets_minus_sdk_only_ones() -> None:
    declared = set(loader()["capabilities"])
    assert declared <= MELTANO_LOADER_CAPABILITIES
    assert declared == set(about()["capabilities"]) & MELTANO_LOADER_CAPABILITIES


def test_setting_names_mirror_about_exactly() -> None:
    declared, expected = list(loader_settings()), list(schema_properties())
    missing = [n for n in expected if n not in declared]
    extra = [n for n in declared if n not in expected]
    assert not missing, f"settings in --about but not in meltano.yml: {missing}"
    assert not extra, f"settings in meltano.yml but not in --about: {extra}"
    assert declared == expected, "keep meltano.yml in the order of --about"


def text_problems(name: str, prop: dict[str, Any], setting: dict[str, Any]) -> list[str]:
    problems = []
    if not str(setting.get("label") or "").strip():
        problems.append("no label")
    elif setting["label"] != prop.get("title", name.replace("_", " ").title()):
        problems.append(f"label {setting['label']!r} is not the schema title")
    if not str(setting.get("description") or "").strip():
        problems.append("no description")
    elif setting["description"] != prop.get("description"):
        problems.append("description differs from the schema's")
    return problems


def setting_problems(name: str, prop: dict[str, Any], setting: dict[str, Any]) -> list[str]:
    problems = text_problems(name, prop, setting)
    if setting.get("kind") != expected_kind(prop):
        problems.append(f"kind {setting.get('kind')!r}, expected {expected_kind(prop)!r}")
    if "enum" in prop:
        options = setting.get("options") or []
        if [o.get("value") for o in options] != prop["enum"]:
            problems.append(f"options {options!r}, expected values {prop['enum']!r}")
        if not all(o.get("label") for o in options):
            problems.append("an option has no label")
    if bool(setting.get("sensitive")) != bool(prop.get("secret") or prop.get("writeOnly")):
        problems.append("'sensitive' differs from the schema's 'secret'")
    if "value" in setting:  # defaults come from the target, so they cannot drift
        problems.append("has a 'value' default")
    if setting.get("kind") in {"password", "hidden"} or "hidden" in setting:
        problems.append("uses a deprecated kind")
    return [f"{name}: {p}" for p in problems]


def test_every_setting_matches_its_schema() -> None:
    settings = loader_settings()
    problems = [
        problem
        for name, prop in schema_properties().items()
        if name in settings
        for problem in setting_problems(name, prop, settings[name])
    ]
    assert not problems, "\n".join(problems)


def test_secrets_are_sensitive_and_not_committed() -> None:
    secrets = {n for n, p in schema_properties().items() if p.get("secret")}
    assert "client_secret" in secrets
    assert all(loader_settings()[n].get("sensitive") is True for n in secrets)
    # Only the emulator's public test secret may appear in the file, and only for `dev`.
    assert "client_secret" not in loader().get("config", {})
    for env in project()["environments"]:
        plugins = (env.get("config") or {}).get("plugins") or {}
        for item in plugins.get("loaders") or []:
            value = (item.get("config") or {}).get("client_secret")
            assert value in {None, "test-client-secret"}, env["name"]
            if value is not None:
                assert env["name"] == "dev"


def test_settings_group_validation_names_known_settings() -> None:
    groups = loader()["settings_group_validation"]
    required = set(about()["settings"].get("required") or [])
    assert groups
    for group in groups:
        assert set(group) <= set(schema_properties())
        assert required <= set(group)
    assert ["client_id", "client_secret", "subdomain"] in groups


def test_loader_config_uses_only_declared_settings() -> None:
    names = set(loader_settings())
    assert set(loader().get("config") or {}) <= names
    for env in project()["environments"]:
        plugins = (env.get("config") or {}).get("plugins") or {}
        for item in plugins.get("loaders") or []:
            assert set(item.get("config") or {}) <= names, env["name"]


def test_stream_maps_drop_tap_jsonl_bookkeeping_columns() -> None:
    stream = plugin("extractors", "tap-jsonl")["config"]["stream_name"]
    config = loader()["config"]
    assert config["streams"][stream]["type"] == "identify"
    assert config["stream_maps"][stream] == {
        "_sdc_filename": "__NULL__",
        "_sdc_last_modified": "__NULL__",
        "_sdc_stream": "__NULL__",
    }
