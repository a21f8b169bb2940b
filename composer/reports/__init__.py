"""Markdown, HTML and charts for runs and matrices."""
