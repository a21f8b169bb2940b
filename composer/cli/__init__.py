"""Click commands only, and the app module that adds them to the one group."""
