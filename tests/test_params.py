import importlib
from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamError, for_profile, lookup, validate

ROOT = Path(__file__).resolve().parents[1]


def declared_params(stage: dict) -> set[str]:
    keys = set()
    for item in stage.get("params", []):
        keys.update([item] if isinstance(item, str) else [k for v in item.values() for k in v])
    return keys


def test_every_stage_declares_exactly_the_params_it_reads():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages, "dvc.yaml has no stages"
    for name, stage in stages.items():
        module = importlib.import_module(stage["cmd"].split("-m ")[1].split()[0])
        assert set(module.PARAMS) == declared_params(stage), name


def test_declared_params_exist_and_validate():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    validate(params)
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        for key in declared_params(stage):
            lookup(params, key)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"profile": "fast"}, "profile"),
        ({"lambda4": -0.1}, "lambda4"),
        ({"alpha1": "1e-4"}, "alpha1"),
        ({"seed": -1}, "seed"),
        ({"synthesize": {"scale": 2}}, "synthesize.scale"),
        ({"synthesize": {"paper": {"scale": 3}}}, "synthesize.paper.scale"),
    ],
)
def test_bad_values_name_the_key(change, key):
    params = {"profile": "quick", "seed": 0, "lambda4": 0.1, **change}
    with pytest.raises(ParamError, match=f"`{key}`"):
        validate(params)


def test_missing_key_is_named():
    with pytest.raises(ParamError, match="`synthesize.scale`"):
        lookup({"synthesize": {}}, "synthesize.scale")


def test_profile_block_overrides_shared_keys():
    section = {"scale": 4, "size": 1, "quick": {"size": 2}, "paper": {"size": 3}}
    assert for_profile(section, "quick") == {"scale": 4, "size": 2}
    assert for_profile(section, "paper") == {"scale": 4, "size": 3}
