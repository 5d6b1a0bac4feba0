"""Runs: the only writers of run folders (train a zoo, resume, merge shards, evaluate on other data)."""
