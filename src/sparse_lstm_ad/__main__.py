"""`python -m sparse_lstm_ad`: the `sparse-lstm-ad` command."""

from sparse_lstm_ad.cli.main import main

main(prog_name="sparse-lstm-ad")
