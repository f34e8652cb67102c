#!/usr/bin/env bash
# GPU acceptance of the training runner (issue 17): on ONE GPU with the GPU training install,
# 2 GRPO steps of the random-reward spec on Qwen2.5-0.5B-Instruct (8 prompts x 4 rollouts,
# 256-token responses), then: the checkpoint is saved and registered, merged with verl's model
# merger, and evaluated on 20 MATH-500 problems with `rlvr-audit run`. Target: under 10 minutes on
# one H100. Exits non-zero on the first failure, naming the stage.
#
#   bash benchmarks/train_acceptance.sh                  # every stage (GPU machine)
#   bash benchmarks/train_acceptance.sh --stage plan     # one stage: plan | train | check | merge | eval
#
# Stages (each can run alone on a run directory the earlier ones wrote):
#   plan   train plan + train validate (on a GPU machine validate must also say "launchable here";
#          elsewhere "cannot launch here" is accepted: set ALLOW_CPU=1)
#   train  train launch in the foreground (timeout TRAIN_TIMEOUT s)
#   check  global_step_2 saved with a Hugging Face copy, and registered as <name>/step2 (status hf)
#   merge  train merge --step 2 --force (FSDP shards -> merged/global_step_2), registered as merged
#   eval   rlvr-audit run of <name>/step2 on the first EVAL_LIMIT MATH-500 problems, all graded
#
# Environment (defaults in brackets):
#   TRAIN_BIN   bin/ of the training environment [.venv-train/bin]
#   EVAL_BIN    bin/ of the evaluation environment [.venv/bin]
#   RUN_DIR     run directory [runs/acceptance]   SPEC [experiments/acceptance-qwen2.5-0.5b-random.yaml]
#   TOKENIZER   tokenizer for validate [the spec's model]
#   DATA_DIR    benchmark files [../shared/data/benchmarks]
#   EVAL_BACKEND [vllm]  EVAL_MODEL_ARGS [dtype=bfloat16,gpu_memory_utilization=0.5]  EVAL_LIMIT [20]
#   EVAL_MAX_TOKENS [1024]  TRAIN_TIMEOUT [480]  ALLOW_CPU [0]
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE=all
if [ "${1:-}" = "--stage" ]; then
  STAGE="${2:?--stage needs one of plan, train, check, merge, eval, all}"
fi
case "$STAGE" in plan|train|check|merge|eval|all) ;; *) echo "unknown stage '$STAGE'; valid: plan, train, check, merge, eval, all" >&2; exit 2;; esac

TRAIN_BIN="${TRAIN_BIN:-.venv-train/bin}"
EVAL_BIN="${EVAL_BIN:-.venv/bin}"
SPEC="${SPEC:-experiments/acceptance-qwen2.5-0.5b-random.yaml}"
RUN_DIR="${RUN_DIR:-runs/acceptance}"
DATA_DIR="${DATA_DIR:-../shared/data/benchmarks}"
EVAL_BACKEND="${EVAL_BACKEND:-vllm}"
EVAL_MODEL_ARGS="${EVAL_MODEL_ARGS:-dtype=bfloat16,gpu_memory_utilization=0.5}"
EVAL_LIMIT="${EVAL_LIMIT:-20}"
EVAL_MAX_TOKENS="${EVAL_MAX_TOKENS:-1024}"
TRAIN_TIMEOUT="${TRAIN_TIMEOUT:-480}"
ALLOW_CPU="${ALLOW_CPU:-0}"
STEP=2

fail() { echo "train_acceptance: FAILED at stage $1: $2" >&2; exit 1; }
say() { echo "train_acceptance: $*" >&2; }

NAME="$("$TRAIN_BIN/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' "$SPEC")" \
  || fail setup "cannot read the spec $SPEC with $TRAIN_BIN/python (is the training environment installed?)"
TOKENIZER="${TOKENIZER:-$("$TRAIN_BIN/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["model"]["path"])' "$SPEC")}"
START=$SECONDS

stage_plan() {
  say "plan $SPEC -> $RUN_DIR"
  "$TRAIN_BIN/rlvr-audit" train plan "$SPEC" --run-dir "$RUN_DIR" --quiet || fail plan "train plan"
  local out
  out="$("$TRAIN_BIN/rlvr-audit" train validate "$RUN_DIR" --tokenizer "$TOKENIZER" --quiet 2>&1)" \
    || { echo "$out" >&2; fail plan "train validate"; }
  echo "$out" >&2
  if ! grep -q "launchable here" <<<"$out"; then
    [ "$ALLOW_CPU" = 1 ] || fail plan "verl cannot launch in $TRAIN_BIN (see above): install the GPU training environment"
    say "validated; cannot launch here (ALLOW_CPU=1)"
  fi
}

stage_train() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || fail train "no GPU (nvidia-smi finds none)"
  say "train: 2 GRPO steps (timeout ${TRAIN_TIMEOUT}s; log $RUN_DIR/logs/train.log)"
  timeout --signal=TERM --kill-after=60 "$TRAIN_TIMEOUT" "$TRAIN_BIN/rlvr-audit" train launch "$RUN_DIR" --quiet \
    || fail train "train launch (exit $?; see $RUN_DIR/logs/train.log)"
}

# registered status of <name>/step2 in RUN/checkpoints.yaml ("" if absent)
step_status() {
  "$TRAIN_BIN/python" - "$RUN_DIR/checkpoints.yaml" "$NAME" "$STEP" <<'PY'
import sys, yaml
registry, name, step = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    data = yaml.safe_load(open(registry)) or {}
except FileNotFoundError:
    sys.exit(0)
entry = ((data.get("families") or {}).get(name) or {}).get("checkpoints", {}).get(f"step{step}")
if entry:
    notes = str(entry.get("notes", ""))
    print(next((s for s in ("merged", "hf", "fsdp") if f"status {s}" in notes), "unknown"), entry.get("model", ""))
PY
}

stage_check() {
  local ckpt="$RUN_DIR/checkpoints/global_step_$STEP"
  [ -d "$ckpt/actor" ] || fail check "no checkpoint $ckpt/actor"
  [ -f "$ckpt/actor/huggingface/config.json" ] || fail check "no Hugging Face copy in $ckpt/actor/huggingface"
  "$TRAIN_BIN/rlvr-audit" train register "$RUN_DIR" >&2 || fail check "train register"
  local status
  status="$(step_status)"
  [ -n "$status" ] || fail check "$NAME/step$STEP is not registered in $RUN_DIR/checkpoints.yaml"
  say "registered $NAME/step$STEP: $status"
}

stage_merge() {
  "$TRAIN_BIN/rlvr-audit" train merge "$RUN_DIR" --step "$STEP" --force --quiet || fail merge "train merge"
  local merged="$RUN_DIR/merged/global_step_$STEP"
  [ -f "$merged/config.json" ] || fail merge "no merged model in $merged"
  case "$(step_status)" in merged*) ;; *) fail merge "$NAME/step$STEP is not registered as merged: $(step_status)";; esac
  say "merged into $merged"
}

stage_eval() {
  local store="$RUN_DIR/eval-store"
  "$EVAL_BIN/rlvr-audit" run --registry "$RUN_DIR/checkpoints.yaml" --checkpoints "$NAME/step$STEP" \
    --tasks math500 --limit "$EVAL_LIMIT" --max-new-tokens "$EVAL_MAX_TOKENS" --backend "$EVAL_BACKEND" \
    --model-args "$EVAL_MODEL_ARGS" --data-dir "$DATA_DIR" --store "$store" \
    --report-dir "$RUN_DIR/eval-report" --quiet >&2 || fail eval "rlvr-audit run"
  "$EVAL_BIN/python" - "$store" "$EVAL_LIMIT" <<'PY' || fail eval "the store does not hold $EVAL_LIMIT graded problems"
import json, sys
from pathlib import Path
store, limit = Path(sys.argv[1]), int(sys.argv[2])
units = sorted(store.glob("units/*/generations.jsonl"))
assert len(units) == 1, f"expected one unit, found {len(units)}"
problems = {json.loads(line)["problem_id"] for line in units[0].open() if line.strip()}
grades = list(units[0].parent.glob("grades/*.jsonl"))
assert len(problems) == limit and grades, (len(problems), grades)
print(f"train_acceptance: {len(problems)} problems generated and graded in {units[0].parent}", file=sys.stderr)
PY
}

case "$STAGE" in
  all) stage_plan; stage_train; stage_check; stage_merge; stage_eval ;;
  *) "stage_$STAGE" ;;
esac
say "stage $STAGE passed in $((SECONDS - START)) s"
