# Shipped as the package `profiler_kit.conf` (see pyproject.toml) so Hydra finds the configs
# through `pkg://profiler_kit.conf` in editable and non-editable installs alike.
