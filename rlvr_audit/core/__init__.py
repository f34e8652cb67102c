"""The core layer: records, errors, configuration files, the store, registry, tasks, prompts, progress."""
