"""Helpers for models from other libraries (see model_navigator.contrib.huggingface)."""
