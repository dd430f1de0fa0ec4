"""Experiment planning for MSFEN (installed as ``nnunet_msfen.plans``): ``nnUNetPlannerMSFEN`` and the
``nnunet-msfen plan`` command that runs it (nnU-Net only looks for planners inside its own package)."""
