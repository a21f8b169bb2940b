"""perf_analyzer: settings, argv, attempts, failure explanation, CSV and profile-export parsing."""
