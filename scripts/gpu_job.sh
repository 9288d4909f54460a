#!/usr/bin/env bash
# One GPU call (<= 10 min): teacher -> teacher logits -> distilled student -> student from scratch -> evaluation.
#
# Here, once (git-ignored outputs, about 40 MiB together):
#     python scripts/pack_gpu_data.py --wheels        # gpu_data/ (Opus ESC-50 + backgrounds) and .whl/
# Then one device call from the repository root, carrying both:
#     run(command="bash scripts/gpu_job.sh", carry=["gpu_data", ".whl"], timeout_s=600)
# It brings back (under $OUT): student_distill.pt, student_scratch.pt, teacher_logits.npy,
# teacher_logits_index.json, metrics.json, logs.tar.gz. FOLD=N picks the validation fold (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the results}"

if compgen -G ".whl/*.whl" >/dev/null; then  # the device's Python lacks soundfile and soxr
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
export PYTHONUNBUFFERED=1
timeout 570 python3 scripts/gpu_job.py --fold "${FOLD:-1}" --results "$OUT" 2>&1 | tee "$OUT/job.log"
