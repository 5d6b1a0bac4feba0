"""Runs made visible in the tools labs already use; nothing here writes a run folder's results.

    tensorboard_logs  Keras TensorBoard logs written while a model trains (``--tensorboard``),
                      under models/<model>/tensorboard/<phase>/, and reading them back
    mlflow_export     one MLflow run per model of a finished run (``export-mlflow``)

Import the module you need: this package imports nothing itself, so training does not load
MLflow's side and the export does not load Keras.
"""
