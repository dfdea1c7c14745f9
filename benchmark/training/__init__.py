"""Which model a size is, the training step, the data stream, checkpoints, devices and the tokenizer."""
