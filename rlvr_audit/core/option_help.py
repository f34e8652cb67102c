"""One wording per command-line option: the help text of every option that more than one command
takes (``--store``, ``--quiet``, ``--seed``, ...), so ``rlvr-audit run --help`` and ``rlvr-audit
train plan --help`` describe an option the same way. Each command module takes its help from
:data:`OPTION_HELP`; a test walks every command and checks that an option reads the same under
each one. Where the option does something particular in one command, the one wording says so.
"""

from __future__ import annotations

OPTION_HELP: dict[str, str] = {
    # where things are
    "--store": "Store directory (JSONL records).",
    "--data-dir": "Read benchmarks from DIR/<task>.jsonl instead of the Hugging Face Hub (task export: the "
    "files the exported tasks read, by absolute path).",
    "--config-dir": "Folder with tasks/, prompts/ and checkpoints.yaml (default: the project's).",
    "--registry": "Checkpoint registry YAML (default: <config-dir>/checkpoints.yaml, the project's).",
    "--out": "Where to write: a folder (simulate clipping: its figure, curve and summary) or a JSON-lines file "
    "(task synth: the problems), or the folder for lm-eval task files (task export: <task>.yaml, for lm_eval "
    "--include_path).",
    # what to evaluate
    "--checkpoints": "Comma-separated registry ids, globs (qwen2.5-math-7b/*) or local model directories.",
    "--tasks": "Comma-separated task ids (see `rlvr-audit ls tasks`); none given: every task.",
    "--task": "One task id: of every imported file that names no known benchmark (import), or the synthetic "
    "task whose generator settings to start from (task synth).",
    "--prompts": "Comma-separated prompt templates; 'default' = each checkpoint's own, 'all' = every template "
    "(probe contamination: of its 'answer' probe; the 'completion' probe uses none).",
    "--no-bases": "Do not add each checkpoint's base model to the run.",
    "--limit": "Only the first N problems of each task.",
    "--step": "Training step: of a new checkpoint id (import), or a step to merge, repeatable (train merge; "
    "default: every step without HF weights).",
    # how to generate
    "--backend": "lm-eval model type (hf, vllm, local-completions, ...) or 'scripted'.",
    "--model-args": "Engine arguments, lm-eval style: 'dtype=bfloat16,max_length=4096'.",
    "--samples": "Samples per problem (default: the task's protocol).",
    "--seed": "Random seed: of sampling (part of the unit key), or of the generator (simulate, task synth).",
    "--temperature": "Sampling temperature (default: the task's; import: for files that record none).",
    "--top-p": "Nucleus sampling mass (default: the task's).",
    "--max-new-tokens": "New-token limit (default: the task's, 3072; probe contamination: of its 'answer' probe; "
    "import: the limit the files were made with, for files that record none, required for qwen-math-jsonl).",
    "--batch-size": "Engine batch size.",
    "--device": "Device for transformers engines (cuda, cpu).",
    "--save-every": "Requests per engine call for servers and SGLang (vLLM takes a unit per call, hf a batch); "
    "what an engine hands back is stored at once.",
    "--use-model-generation-config": "Let the model's generation_config.json supply top_k, min_p and "
    "repetition_penalty (part of the unit key). Default: every sampling parameter comes from the protocol.",
    "--shard": "I/N: generate only shard I of N of the planned work (Slurm arrays, hand-split runs); join the "
    "shards' stores with `rlvr-audit store merge`.",
    "--ray-address": "Ray cluster: 'auto' or HOST:PORT to generate on (this process alone writes the store); "
    "train launch: its dashboard, http://HEAD:8265, to submit a Ray job to.",
    "--gpus-per-unit": "GPUs each Ray worker holds (default: tensor_parallel_size on a GPU cluster, 0 on CPUs).",
    # grading
    "--graders": "Comma-separated grader ids (see `rlvr-audit ls graders`; report: default every grader in the store).",
    "--workers": "Grading worker processes (default: all cores).",
    "--timeout": "Wall-clock seconds per graded answer.",
    "--grade-save-every": "Store a unit's grades after every N graded samples.",
    # reporting
    "--name": "Report name: the report goes to reports/<name>.",
    "--report-dir": "Report folder (default: reports/<name>).",
    "--bootstrap-seed": "Seed of the bootstrap resampling.",
    "--resamples": "Bootstrap resamples.",
    "--level": "Confidence level of the intervals.",
    "--ci-method": "Interval: 'wilson' (default; Wilson score interval with a cluster design effect over "
    "problems, MOVER for gains), or a bootstrap over problems: 'percentile' or 'bca' (bias-corrected, accelerated).",
    "--no-browser": "Write index.html without the per-sample browser pages.",
    "--browser-page-size": "Samples per page of the per-sample browser.",
    "--browser": "Which units get per-sample browser pages: all (default) or units=GLOB[,GLOB...] "
    "(globs over unit key, checkpoint id or 'checkpoint · task · prompt' label).",
    # display
    "--quiet": "No progress bars.",
}
"""Option name -> its help text, the same under every command that takes the option."""
