"""``nnunet-msfen demo``: the whole pipeline on phantom data, on a CPU, in minutes.

phantom -> convert-brats -> plan and preprocess -> train (nnUNetv2_train) -> predict the held-out cases
(nnUNetv2_predict) -> evaluate -> metrics table and an overlay PNG. ``settings.py`` holds the choices,
``workdir.py`` the folder and which steps are done, ``steps.py`` the steps, ``run.py`` their order,
``overlay.py`` the picture, ``report.py`` the table and the trivial baselines, ``command.py`` the command line.
What it shares with the accuracy experiments (subprocesses, the workdir's record, the prediction step) is in
``nnunet_msfen.pipeline``.
"""
