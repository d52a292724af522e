"""sparse-lstm-ad's Hydra plugin: the basic sweeper, less the composition `train` did already."""
