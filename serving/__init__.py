"""PatternAlarm scoring service: FastAPI on uvicorn serving the registry's champion forest.

Layout: ``settings`` (the one Settings), ``app`` (factory and lifespan), ``routes/`` (HTTP only),
``scoring`` (features, probabilities, explanations), ``model_store`` (registry polling, canary
validation, atomic hot swap), ``incidents`` (alert and incident queries), ``schemas`` (request,
stored and public models), ``metrics`` and ``limits`` (ASGI middleware). Run it with
``python -m serving``.
"""
