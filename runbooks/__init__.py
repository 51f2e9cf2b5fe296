"""Executable operational runbooks: Gherkin procedures whose steps check real infrastructure."""

__version__ = "0.1.0"
