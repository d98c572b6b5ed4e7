"""Reading and checking the params a DVC stage declares.

params.yaml holds the keys of both profiles at its top level and each profile's own sections under `quick:` and
`paper:`, with no key in both places: `profile_section(params, "train_gan")` is `params[<profile>]["train_gan"]`.
Values are checked before any work is done; a bad one raises ParamError naming the key.
"""
from __future__ import annotations

import numbers

PROFILES = ("quick", "paper")
LOSS_WEIGHTS = ("lambda1", "lambda2", "lambda3", "lambda4", "image_gan_weight", "alpha1", "alpha2")
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


def validate(params: dict) -> None:
    """Check every value whose meaning is fixed by the method, wherever it appears."""
    if "profile" in params and params["profile"] not in PROFILES:
        raise ParamError(f"`profile` must be one of {PROFILES}, got {params['profile']!r}")
    if "seed" in params and not (isinstance(params["seed"], int) and params["seed"] >= 0):
        raise ParamError(f"`seed` must be a non-negative integer, got {params['seed']!r}")
    if "scale" in params and params["scale"] != SCALE:
        raise ParamError(f"`scale` must be {SCALE} (the paper's x4 task), got {params['scale']!r}")
    for key in LOSS_WEIGHTS:
        if key in params:
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
                raise ParamError(f"`{key}` must be a non-negative number, got {value!r}")
