"""Built-in plugins, one package each. They are found through the ``tsunagu.plugins`` entry points in
``pyproject.toml``, exactly like vendors' packages."""
