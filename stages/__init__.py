"""One thin script per DVC stage. A stage sees only the keys it declares under `params:` in dvc.yaml (read through
`dvc.api.params_show`), so a key it forgets to declare fails loudly instead of silently escaping `dvc exp run -S`."""
from collections.abc import Callable, Iterable

from pipeline.param_schema import check
from pipeline.params import PROFILES, ParamError, lookup


def stage_params(stage: str, reads: Callable[[dict], Iterable[str]], complete: bool = False) -> dict:
    """The params `stage` declares in dvc.yaml, checked against the schema (with `complete`, every key of it) and
    to contain the dotted keys `reads(params)`.

    A bad or missing value exits at once with a one-line message naming the key.
    """
    import dvc.api  # imported here: it takes a second and only stages need it

    params = dvc.api.params_show(stages=[stage])
    try:
        check(params, complete)
        for key in reads(params):
            lookup(params, key, stage)
    except ParamError as e:
        raise SystemExit(f"params.yaml: {e}") from None
    return params


def every_key(params: dict) -> tuple[str, ...]:
    """The keys of both profiles and the active profile's sections: what `check_params` and `report` read."""
    return *(k for k in params if k not in PROFILES), params["profile"]
