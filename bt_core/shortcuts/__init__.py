"""Shortcut learning, measured: where models look, probes that do not trust the maps,
strategy clusters of the maps, and a dataset audit. NumPy / OpenCV / scikit-learn only."""
