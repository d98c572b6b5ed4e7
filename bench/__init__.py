"""The benchmark of the pipeline's speed, beside it: `python -m bench` (see bench/__main__.py)."""
