"""The Jinja templates tisbench renders; shipped as package data (see pyproject.toml)."""
