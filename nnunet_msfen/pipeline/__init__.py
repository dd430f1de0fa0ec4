"""What the demo and the accuracy experiments share: running nnU-Net's commands with their output streamed to a
log (``runner``), a working folder with nnU-Net's three folders and a record of the finished steps (``workdir``),
and the prediction step (``predict``). Each pipeline adds its own steps and settings on top
(``nnunet_msfen.demo``, ``nnunet_msfen.experiments``).
"""
