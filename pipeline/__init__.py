"""SFD and SFD-IQA (Dong et al., CVPR 2025): the importable core of the reproduction pipeline."""
