import importlib
from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamError, for_profile, lookup, validate

ROOT = Path(__file__).resolve().parents[1]


def resolved_stages() -> dict[str, tuple[str, set[str]]]:
    """Each stage's command and declared params, as DVC resolves them (foreach stages included)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {st.name: (st.cmd, {p for dep in st.params for p in dep.params}) for st in repo.index.stages}


def test_every_stage_declares_exactly_the_params_it_reads():
    stages = resolved_stages()
    assert {"download@sr", "download@train_weights", "synthesize@sr", "synthesize@iqa", "pretrain_psnr@rrdbnet", "pretrain_psnr@swinir", "train_gan@sfd",
            "train_gan@swinir_sfd", "train_real"} <= set(stages)
    for name, (cmd, declared) in stages.items():
        if not cmd.startswith("python -m "):  # the papermill notebook: its only param is interpolated in the command
            assert declared == {"profile"}, name
            continue
        module_name, *args = cmd.split("-m ")[1].split()
        reads = importlib.import_module(module_name).PARAMS
        if isinstance(reads, dict):  # a foreach stage: the params of its variant
            reads = reads[args[0]]
        assert set(reads) == declared, name


def test_declared_params_exist_and_validate():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    validate(params)
    for _, declared in resolved_stages().values():
        for key in declared:
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
