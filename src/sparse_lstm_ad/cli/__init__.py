"""The command line and every Hydra import. `sparse-lstm-ad` (also `python -m sparse_lstm_ad`) is
the click group in `main`, one module per subcommand beside it; training stays
`python src/train.py` (Hydra's entry), which imports only the light parts of this package.

Every user mistake is one line on stderr and exit 2; click's own usage errors exit 2 too.
"""
