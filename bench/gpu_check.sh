#!/usr/bin/env bash
# GPU check, one script, inside 9 minutes, nothing from the network: trains a >= 100M-parameter
# Llama for a few hundred steps on the generated task suite with this project's training step
# (bf16 autocast, fused AdamW, SDPA attention, TF32, torch.compile), checks that the loss falls,
# and prints tokens/s and MFU against the card's bf16 dense peak.
#
#   bash bench/gpu_check.sh           # on a CUDA machine (needs torch + transformers, no install)
#   bash bench/gpu_check.sh --dry     # anywhere: a tiny model for a few CPU steps, same code path
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
timeout 540 python bench/gpu_check.py "$@"
