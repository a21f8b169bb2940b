"""Stacks shipped with tisbench (quickstart/); package data, see pyproject.toml."""
