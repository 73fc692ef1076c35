#!/usr/bin/env bash
# The GPU checks, prepared for a lent device (about 5 minutes on one GPU): repkit against diffusers on the
# same network (DDIM and RePaint), DDIM with the network compiled (CUDA graphs) against eager, bf16 against
# fp32 in training and sampling, and the `#| cuda` cells.
#   bash .ci/gpu_check.sh              on a machine with CUDA (fails at once without one)
#   DEVICE=cpu bash .ci/gpu_check.sh   the dry run on a CPU: the same commands, quick sizes
# Run it after `pip install -e ".[dev]"`. It prints the ratios; speed goals live here, not in assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
export DEVICE
QUICK=""
if [ "$DEVICE" = cpu ]; then QUICK=--quick; fi
python -c "import sys, torch; sys.exit(0 if '$DEVICE' == 'cpu' or torch.cuda.is_available() else 'gpu_check: no CUDA device (use DEVICE=cpu for the dry run)')"
python -c "import torch; print('torch', torch.__version__, '| device', '$DEVICE', torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
echo "== DDIM against diffusers' DDIMPipeline, and the loop's overhead over bare network calls"
python - <<PY
from repkit.ddim import bench_sampler
for b in ((16,) if "$QUICK" else (16, 64)):
    print(bench_sampler(quick=bool("$QUICK"), batch_size=b, device="$DEVICE", diffusers=True, compile="$DEVICE" != "cpu"), end='\n\n')
PY
echo "== RePaint against diffusers' RePaintPipeline (same batch, steps, J, r)"
repkit bench inpaint --device "$DEVICE" --diffusers $QUICK
echo "== training steps/s, fp32 and bf16"
repkit bench train --device "$DEVICE" $QUICK
echo "== the #| cuda cells"
nbdev_test --flags cuda --path nbs/15_quality.ipynb
echo "gpu_check: done on $DEVICE"
