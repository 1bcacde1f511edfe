"""The KL coefficient beta: fixed, or adapted towards a target KL (Ziegler et al. 2019, as in TRL 0.x)."""

from dataclasses import dataclass


@dataclass
class FixedKLController:
    """beta stays at its initial value."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        """Nothing to adapt; the signature matches AdaptiveKLController's."""

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


@dataclass
class AdaptiveKLController:
    """beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon).

    A KL above the target raises beta, one below lowers it, by at most 20 % per horizon of samples.
    """

    value: float
    target: float
    horizon: int

    def __post_init__(self) -> None:
        if self.target <= 0 or self.horizon <= 0:
            raise ValueError(f"the adaptive KL controller needs target > 0 and horizon > 0, got {self.target}, {self.horizon}")

    def update(self, current_kl: float, n_steps: int) -> None:
        proportional_error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


def make_kl_controller(kind: str, beta: float, target: float, horizon: int
                       ) -> FixedKLController | AdaptiveKLController:
    """The controller a PPOConfig names ("fixed" or "adaptive")."""
    if kind == "fixed":
        return FixedKLController(beta)
    if kind == "adaptive":
        return AdaptiveKLController(beta, target, horizon)
    raise ValueError(f"unknown KL controller {kind!r}: 'fixed' or 'adaptive'")
