"""HTTP routes: translate requests into calls on serving modules and results into responses."""
