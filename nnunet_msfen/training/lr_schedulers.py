"""Learning-rate schedules that follow nnU-Net's scheduler protocol: ``step(current_epoch)`` sets the rate."""
import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import _LRScheduler


class WarmupCosineLRScheduler(_LRScheduler):
    """Linear warm-up from ``initial_lr / warmup_steps`` to ``initial_lr`` over ``warmup_steps``, then cosine
    annealing to ``min_lr`` at ``max_steps`` (MSFEN paper, sec. 2.2-2.3: Adam, warm-up, cosine annealing).

    Raises:
        ValueError: for ``max_steps < 1``, ``warmup_steps`` outside [0, max_steps) or a negative ``min_lr``.
    """

    def __init__(self, optimizer: Optimizer, initial_lr: float, max_steps: int, warmup_steps: int,
                 min_lr: float = 0.0, current_step: int = None):
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got max_steps={max_steps}")
        if not 0 <= warmup_steps < max_steps:
            raise ValueError(f"warmup_steps must be in [0, max_steps={max_steps}), got warmup_steps={warmup_steps}")
        if min_lr < 0:
            raise ValueError(f"min_lr must be >= 0, got min_lr={min_lr}")
        self.initial_lr, self.max_steps, self.warmup_steps, self.min_lr = initial_lr, max_steps, warmup_steps, min_lr
        self.ctr = 0
        super().__init__(optimizer, current_step if current_step is not None else -1)

    def lr_at(self, step: int) -> float:
        """The learning rate of ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.initial_lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (self.initial_lr - self.min_lr) * (1 + math.cos(math.pi * progress))

    def step(self, current_step: int = None) -> None:
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(current_step)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
