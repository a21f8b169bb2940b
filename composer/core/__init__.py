"""Pure building blocks: stack config, release, sweep, labels, errors and ExitStatus."""
