"""Federated training across hospitals on Flower: images never leave a hospital.

One module per job: :mod:`.sites` (one client per site, per-site lesion-grouped splits and
the checks run before round 1), :mod:`.local` (a hospital's data and its local epochs with
skinml's :class:`~skinml.training.trainer.Trainer`), :mod:`.messages` (what a hospital
sends: model arrays, metrics and anonymous predictions, never images or identifiers),
:mod:`.client_app` / :mod:`.server_app` (the Flower apps), :mod:`.strategies` (Flower
strategies and privacy wrappers from the config), :mod:`.rounds` (the round loop with
failure records and resume), :mod:`.secagg` (SecAgg+ rounds), :mod:`.finish`
(calibration, per-site metrics, bundle and ONNX export), :mod:`.tracking` (MLflow) and
:mod:`.launch` (simulation engine or SuperLink deployment).
"""
