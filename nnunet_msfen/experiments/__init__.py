"""The experiment harness: how MSFEN is compared with nnU-Net's U-Net for accuracy, and the studies behind
``docs/ablation.md``. (Speed and memory are measured by ``nnunet_msfen.benchmark``.)

- ``nnunet-msfen benchmark-accuracy`` (``accuracy_command``): train each trainer for the same budget on one BraTS
  folder and score it on another. ``accuracy_settings`` holds what decides a run, ``accuracy_workdir`` its folder
  and record, ``accuracy`` the steps, ``train_worker`` the seeded training process, ``accuracy_report`` the report.
- ``nnunet-msfen pool-accuracy`` (``accuracy_pool_command``, ``accuracy_pool``): several runs on disjoint test
  folders pooled into one paired comparison.
- ``studies/``: one-off studies run by hand (commands in their docstrings and in docs/ablation.md).

The steps they share with the demo (subprocesses, the workdir's record, prediction) are in
``nnunet_msfen.pipeline``.
"""
