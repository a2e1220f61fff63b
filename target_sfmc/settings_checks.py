"""Settings checks made before the target starts: names, types of environment variables, sizes.

A misspelt setting or environment variable would otherwise be ignored silently, and the SDK
turns a value it cannot read into a traceback (or reads any unknown word as false). Each
problem here is one sentence.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


def _kinds(definition: Mapping[str, Any]) -> set[str]:
    kinds = definition.get("type")
    if isinstance(kinds, str):
        return {kinds}
    if isinstance(kinds, list):
        return set(kinds)
    return {kind for option in definition.get("anyOf", []) for kind in _kinds(option)}


def _environment_value_problem(name: str, value: str, definition: Mapping[str, Any]) -> str | None:
    kinds = _kinds(definition)
    if "integer" in kinds:
        try:
            int(value)
        except ValueError:
            return f"Environment variable {name} must be a whole number."
    elif "boolean" in kinds:
        if value.strip().lower() not in _TRUE_WORDS | _FALSE_WORDS:
            return f"Environment variable {name} must be true or false."
    elif kinds & {"object", "array"} and not (kinds & {"string"}):
        try:
            json.loads(value)
        except ValueError:
            what = "a JSON object" if "object" in kinds else "a JSON array"
            return f"Environment variable {name} must be {what}."
    return None


def check_environment(
    properties: Mapping[str, Mapping[str, Any]], prefix: str, environ: Mapping[str, str]
) -> list[str]:
    """Check the settings given as environment variables before the SDK reads them.

    The SDK turns a value it cannot read into a traceback, or reads any unknown word as
    false; a misspelt variable would be ignored. Each problem here is one sentence. The
    prefix's ``LOGLEVEL`` is no setting but the SDK's log level, and is left to the SDK.

    Args:
        properties: Every setting's JSON Schema (the target's and the SDK's).
        prefix: The variables' prefix, e.g. ``TARGET_SFMC_``.
        environ: The environment.

    Returns:
        One sentence per problem.
    """
    by_variable = {prefix + name.upper().replace("-", "_"): name for name in properties}
    problems: list[str] = []
    for variable, value in sorted(environ.items()):
        if not variable.startswith(prefix) or variable == f"{prefix}LOGLEVEL":
            continue
        name = by_variable.get(variable)
        if name is None:
            suggestion = _did_you_mean(variable, by_variable)
            problems.append(f"Environment variable {variable} is not a setting{suggestion}")
            continue
        problem = _environment_value_problem(variable, value, properties[name])
        if problem is not None:
            problems.append(problem)
    return problems


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else "."


def check_setting_names(config: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """Refuse settings the target does not have: a misspelt one would be silently ignored.

    Args:
        config: The config.
        known: Every setting's name (the target's and the SDK's).

    Returns:
        One sentence per unknown setting, with the closest known name.
    """
    names = set(known)
    return [
        f"Setting '{name}' is not a setting of target-sfmc{_did_you_mean(name, names)}"
        for name in sorted(config)
        if name not in names and not name.startswith("_")
    ]


def check_batch_size(config: Mapping[str, Any]) -> list[str]:
    """``batch_size_rows`` must be at least 1 (the SDK accepts any integer).

    Args:
        config: The config.

    Returns:
        The problem, if any.
    """
    size = config.get("batch_size_rows")
    if size is not None and (not isinstance(size, int) or size < 1):
        return ["Setting 'batch_size_rows' must be a whole number of at least 1."]
    return []
