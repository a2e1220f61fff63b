"""The fast path leans on singer-sdk internals: this fails when an SDK upgrade changes them."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import singer_sdk

from target_sfmc.fastpath.target import COPIED_SDK_CODE, sdk_code_fingerprint

PACKAGE = Path(__file__).resolve().parents[2] / "target_sfmc"
SDK = Path(singer_sdk.__file__).parent
# Modules whose classes extend SDK classes, and so could reach into their private parts.
SDK_SUBCLASS_MODULES = ("target.py", "sinks.py", "sink_base.py", "ignored_streams.py")


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            found = getattr(found, name)
        return found
    raise AssertionError(f"cannot resolve {dotted}")


@pytest.mark.parametrize("dotted", sorted(COPIED_SDK_CODE))
def test_copied_sdk_code_is_unchanged(dotted: str) -> None:
    """Re-read the SDK function and the fast path's copy of it when this fails."""
    function = resolve(dotted)
    assert sdk_code_fingerprint(function) == COPIED_SDK_CODE[dotted], (  # type: ignore[arg-type]
        f"{dotted} changed in the installed singer-sdk: compare it with "
        "target_sfmc/fastpath/target.py, then update the fingerprint"
    )


def sdk_private_names() -> set[str]:
    """Private attributes the SDK's target, sink, reader and plugin classes use."""
    sources = [
        SDK / "target_base.py",
        SDK / "plugin_base.py",
        SDK / "sinks" / "core.py",
        SDK / "sinks" / "batch.py",
        SDK / "singerlib" / "encoding" / "base.py",
    ]
    names: set[str] = set()
    for source in sources:
        text = source.read_text()
        names |= set(re.findall(r"self\.(_[a-z][a-z0-9_]*)", text))
        names |= set(re.findall(r"def (_[a-z][a-z0-9_]*)\(", text))
    return names


def test_private_sdk_names_appear_only_in_the_fast_path() -> None:
    private = sdk_private_names()
    assert {"_process_record_message", "_validate_and_parse", "_sinks_active"} <= private
    offenders: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("fastpath/", "emulator/")):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
                module_parts = (node.module or "").split(".")
                imported = [alias.name for alias in node.names]
                if any(part.startswith("_") for part in module_parts + imported):
                    offenders.append(f"{relative}:{node.lineno} imports a private SDK name")
            if relative in SDK_SUBCLASS_MODULES:
                name = None
                if isinstance(node, ast.Attribute):
                    name = node.attr
                elif isinstance(node, ast.FunctionDef):
                    name = node.name
                if name in private:
                    offenders.append(f"{relative}:{node.lineno} uses {name}")
    assert not offenders, offenders
