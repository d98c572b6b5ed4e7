"""Stage `check_params`: every key of both profiles and of the active profile checked against the schema
(pipeline/param_schema.py), upstream of every other stage: a bad or missing value stops the DAG with one line
naming the key before DVC removes any stage's outputs. It writes only the profile it checked, so a change of
another value that passes re-runs nothing downstream by itself."""
import sys
from pathlib import Path

from pipeline.fileio import write_json
from stages import every_key, stage_params

OUT = Path("data/params_checked.json")
reads = every_key


def main() -> int:
    params = stage_params("check_params", reads, complete=True)
    write_json(OUT, {"profile": params["profile"]})
    print(f"params.yaml: every key of the shared sections and of the {params['profile']} profile is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
