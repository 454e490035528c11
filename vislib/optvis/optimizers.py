"""Optimisers for images: torch.optim's Adam, and two hand-written rules torch.optim lacks.

Each entry of OPTIMIZERS makes an optimiser from (tensors, learning rate); the engine minimises
the negative objective.
"""
import torch


class NormalizedAscent(torch.optim.Optimizer):
    """DeepDream's step: the gradient divided by its mean absolute value, times `lr`.

    Hand-written (a few lines) because torch.optim has no such rule; it makes the step size
    independent of the layer's gradient scale. Steps along -grad (the engine minimises the loss).
    """

    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] / p.grad.abs().mean().clamp_min(1e-12) * p.grad)
        return loss


class LBFGS(torch.optim.Optimizer):
    """torch.optim.LBFGS(max_iter=1) without a line search, step for step, without waiting on a GPU.

    torch's version reads numbers back to Python on every step (the loss, the curvature test, each
    history weight for `add_(alpha=...)`); each read waits for the GPU to finish, so a GPU step
    costs the CPU's time plus the GPU's (bench/RESULTS.md, Synthesis). Here those numbers stay
    tensors and the tests become masks: a rejected curvature pair enters the history with weight 0
    (torch leaves it out), a non-descent direction gets step 0 (torch breaks off).
    """

    def __init__(self, params, lr: float = 1.0, history_size: int = 20):
        super().__init__(params, {"lr": lr})
        self.history_size = history_size

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        lr = self.param_groups[0]["lr"]
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        state = self.state["lbfgs"]
        if "d" not in state:  # the first step: steepest descent, scaled as torch does
            state.update(dirs=[], steps=[], ro=[], h=torch.ones((), dtype=g.dtype, device=g.device))
            d, t = -g, (1.0 / g.abs().sum()).clamp(max=1.0) * lr
        else:
            y, s = g - state["g"], state["d"] * state["t"]
            ys = y.dot(s)
            accepted = ys > 1e-10
            if len(state["dirs"]) == self.history_size:
                for key in ("dirs", "steps", "ro"):
                    state[key].pop(0)
            state["dirs"].append(y)
            state["steps"].append(s)
            state["ro"].append(torch.where(accepted, 1.0 / ys, torch.zeros_like(ys)))
            state["h"] = torch.where(accepted, ys / y.dot(y), state["h"])
            q, alphas = -g, []
            for y_i, s_i, ro_i in zip(reversed(state["dirs"]), reversed(state["steps"]), reversed(state["ro"])):
                alphas.append(s_i.dot(q) * ro_i)
                q = q - alphas[-1] * y_i
            d = q * state["h"]
            for y_i, s_i, ro_i, a_i in zip(state["dirs"], state["steps"], state["ro"], reversed(alphas)):
                d = d + s_i * (a_i - y_i.dot(d) * ro_i)
            t = torch.full((), lr, dtype=g.dtype, device=g.device)
        t = torch.where(g.dot(d) > -1e-9, torch.zeros_like(t), t)  # not downhill: stay
        state.update(g=g, d=d, t=t)
        offset = 0
        for p in params:
            p.add_(d[offset:offset + p.numel()].view_as(p) * t)
            offset += p.numel()
        return loss


OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "lbfgs": lambda params, lr: LBFGS(params, lr=lr, history_size=20),
    "normalized": lambda params, lr: NormalizedAscent(params, lr=lr),
}
