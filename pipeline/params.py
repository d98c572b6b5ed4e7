"""Reading and checking the params a DVC stage declares.

params.yaml holds the keys of both profiles at its top level and each profile's own sections under `quick:` and
`paper:`, with no key in both places: `profile_section(params, "train_gan")` is `params[<profile>]["train_gan"]`.
Values are checked against the schema of pipeline/param_schema.py; a bad one raises ParamError naming the key.
"""
from __future__ import annotations

PROFILES = ("quick", "paper")
SCALE = 4  # the paper's task


class ParamError(ValueError):
    """A missing or invalid value in params.yaml."""


def lookup(params: dict, key: str, where: str = "params.yaml"):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamError(f"missing param `{key}` (not declared for {where} in dvc.yaml, or absent from params.yaml)")
        node = node[part]
    return node


def profile_section(params: dict, section: str):
    """A section of the active profile: `params[<profile>][section]`."""
    return lookup(params, f"{params['profile']}.{section}")
