"""Model-configuration search (`tisbench tune`): space, search, statistics, overrides, tune.json. Pure."""
