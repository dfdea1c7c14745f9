"""One module per DVC stage and command (`python -m benchmark <command>`): parse arguments, read and write files, call the libraries."""
