"""Reading and checking the params a DVC stage declares.

A stage sees only the keys it declares under `params:` in dvc.yaml (read through `dvc.api.params_show`), so a
key it forgets to declare fails loudly instead of silently escaping `dvc exp run -S`. Values are checked before
any work is done, and a bad one stops the stage with a message naming the key.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable

PROFILES = ("quick", "paper")
LOSS_WEIGHTS = ("lambda1", "lambda2", "lambda3", "lambda4", "alpha1", "alpha2")


class ParamError(ValueError):
    """A missing or invalid value in params.yaml."""


def stage_params(stage: str, keys: Iterable[str]) -> dict:
    """The params `stage` declares in dvc.yaml, checked to contain `keys` (dotted) and validated.

    A bad or missing value exits at once with a one-line message naming the key.
    """
    import dvc.api  # imported here: it takes a second and only stages need it

    params = dvc.api.params_show(stages=[stage])
    try:
        for key in keys:
            lookup(params, key, stage)
        validate(params)
    except ParamError as e:
        raise SystemExit(f"params.yaml: {e}") from None
    return params


def lookup(params: dict, key: str, where: str = "params.yaml"):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamError(f"missing param `{key}` (not declared for {where} in dvc.yaml, or absent from params.yaml)")
        node = node[part]
    return node


def for_profile(section: dict, profile: str) -> dict:
    """A stage section with its `quick:`/`paper:` block for `profile` merged over the shared keys."""
    if profile not in section:
        raise ParamError(f"section has no `{profile}:` block")
    shared = {k: v for k, v in section.items() if k not in PROFILES}
    return {**shared, **section[profile]}


def validate(params: dict) -> None:
    """Check every value whose meaning is fixed by the method, wherever it appears."""
    if "profile" in params and params["profile"] not in PROFILES:
        raise ParamError(f"`profile` must be one of {PROFILES}, got {params['profile']!r}")
    if "seed" in params and not (isinstance(params["seed"], int) and params["seed"] >= 0):
        raise ParamError(f"`seed` must be a non-negative integer, got {params['seed']!r}")
    for key in LOSS_WEIGHTS:
        if key in params:
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
                raise ParamError(f"`{key}` must be a non-negative number, got {value!r}")
    for name, section in params.items():
        if isinstance(section, dict):
            _check_scale(section, name)


def _check_scale(section: dict, where: str) -> None:
    if "scale" in section and section["scale"] != 4:
        raise ParamError(f"`{where}.scale` must be 4 (the paper's x4 task), got {section['scale']!r}")
    for profile in PROFILES:
        if isinstance(section.get(profile), dict):
            _check_scale(section[profile], f"{where}.{profile}")
