#!/usr/bin/env bash
# The paper-setting study (docs/results/paper-8b.md) in one go on a GPU machine, from the
# repository root: install, measure two GReaTer steps, print the projected cost, run the study
# (resumable: run this script again to continue), export the committable record.
#
#   MODEL=meta-llama/Meta-Llama-3-8B-Instruct bash docs/results/paper-8b.sh
#
# Variables: MODEL (hub id or local folder), DATA (benchmark data folder, default
# ../shared/data), OUT (study folder, default studies/llama3-8b-bbh), SKIP_INSTALL=1 to use the
# current environment as it is.
set -euo pipefail

MODEL=${MODEL:-meta-llama/Meta-Llama-3-8B-Instruct}
DATA=${DATA:-../shared/data}
OUT=${OUT:-studies/llama3-8b-bbh}
TASKS=bbh/navigate,bbh/sports_understanding,bbh/web_of_lies,bbh/hyperbaton
# a hub id needs the hub once (the bench would otherwise default to offline)
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  python3 -m venv .venv-gpu
  # shellcheck disable=SC1091
  . .venv-gpu/bin/activate
  pip install --upgrade pip
  pip install "torch>=2.3"  # the machine's CUDA build from PyPI
  pip install -r requirements/local.txt
fi

python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this plan is GPU work'"

mkdir -p results
python benchmarks/bench_greater.py --model "$MODEL" --task bbh/navigate --data-dir "$DATA" \
  --train-size 50 --max-new-tokens 1024 --steps 2 --skip-reference \
  --out results/bench_greater_gpu.json
python - <<'EOF'
import json

bench = json.load(open("results/bench_greater_gpu.json"))
per_step = bench["default"]["steady_seconds_per_step"]
greater_hours = per_step * 125 * 4 / 3600
print(f"GReaTer: {per_step:.0f} s per step at the paper's settings on {bench['device_name']}")
print(f"projected: {greater_hours:.1f} GPU hours for GReaTer's 4 runs (125 steps each);")
print("GPO and the test evaluation add about as much again (docs/results/paper-8b.md)")
EOF

promptopt study --methods greater,gpo \
  --tasks "$TASKS" \
  --seeds 0 --model "$MODEL" \
  -o train_size=50 -o dev_size=100 -o max_new_tokens=1024 \
  -o greater:steps=125 --backend hf \
  --scoring generate,logprob --test-limit 100 \
  --baseline-prompt "Answer with the option only." \
  --data-dir "$DATA" --out "$OUT" \
  --export docs/results/llama3-8b-bbh
