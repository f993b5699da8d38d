"""The version of fetalhc (one place; pyproject.toml and CITATION.cff carry the same)."""

__version__ = "0.4.0"
