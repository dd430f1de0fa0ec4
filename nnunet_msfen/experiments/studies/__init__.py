"""Studies behind docs/ablation.md, run by hand (each module's docstring gives its command); no command of the
package uses them.

``learning_speed_probe`` and ``per_iteration_study`` hold study trainers, found by nnU-Net through
``nnUNet_extTrainer`` pointing at this folder. nnU-Net then imports every module here, so each must be free of
side effects at import.
"""
