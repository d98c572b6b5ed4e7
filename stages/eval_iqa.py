"""Stage `eval_iqa`: Tables 3 and 4: SFD-IQA (Eq. 10 and its ablations), pyiqa's no-reference methods of Table 3,
ContentSep and MDFS score the IQA sets; PLCC, SRCC and KRCC against the MOS."""
import os
import sys

# pyiqa fixes its weight cache folder when it is imported: point it at the download stage's folder first
os.environ["TORCH_HOME"] = "data/weights/eval/torch"

from pipeline.evaluate import evaluate_iqa
from pipeline.params import profile_section
from stages import stage_params


def reads(params: dict) -> tuple[str, ...]:
    return "profile", "alpha1", "alpha2", f"{params['profile']}.eval_iqa"


def main() -> int:
    params = stage_params("eval_iqa", reads)
    summary = evaluate_iqa(profile_section(params, "eval_iqa"), params["profile"],
                           params["alpha1"], params["alpha2"])
    for set_name, by_method in summary["results"].items():
        for method, values in by_method.items():
            print(f"{set_name:>18} {method:>18}  " + ("  ".join(f"{k} {v:.4f}" for k, v in values.items())
                                                      if isinstance(values, dict) else values))
    for key, reason in summary["na"].items():
        print(f"n/a {key}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
