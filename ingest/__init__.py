"""The one adapter over kafka-python: nothing outside this package imports kafka."""
