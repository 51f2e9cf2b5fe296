"""This project's own steps. Each public module here is loaded by `runbooks verify`, `runbooks lint`,
`runbooks steps` and plain `pytest` (runbooks.toml: steps = ["steps"]); `_helpers.py` and `test_*.py` are not."""
