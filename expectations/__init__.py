"""Great Expectations suites (GX 0.18) for the data the DAGs train on; see training_set.py."""
