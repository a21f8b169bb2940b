"""Label keys tisbench writes on the objects of a lab, beyond compose's own. Pure constants."""

ADVISORY_ULIMITS_LABEL = "tisbench.ulimits-advisory"  # server: ulimits that are NGC's advice, not the user's
ULIMITS_DROPPED_LABEL = "tisbench.ulimits-dropped"  # server: the advice this engine could not grant
