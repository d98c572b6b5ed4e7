"""One thin script per DVC stage. A stage sees only the keys it declares under `params:` in dvc.yaml (read through
`dvc.api.params_show`), so a key it forgets to declare fails loudly instead of silently escaping `dvc exp run -S`."""
from collections.abc import Callable, Iterable

from pipeline.params import ParamError, lookup, validate


def stage_params(stage: str, reads: Callable[[dict], Iterable[str]]) -> dict:
    """The params `stage` declares in dvc.yaml, checked to contain the dotted keys `reads(params)` and validated.

    A bad or missing value exits at once with a one-line message naming the key.
    """
    import dvc.api  # imported here: it takes a second and only stages need it

    params = dvc.api.params_show(stages=[stage])
    try:
        validate(params)
        for key in reads(params):
            lookup(params, key, stage)
    except ParamError as e:
        raise SystemExit(f"params.yaml: {e}") from None
    return params
