"""Is `vislib.attribution.occlusion` faster than Captum's `Occlusion`, with the same map?

In one process, on one picture (skimage's Chelsea the cat, 224 px, efficientnet_lite0, the top
class, window 16, stride 8, the picture's mean colour as the fill): Captum's `Occlusion` with its
default `perturbations_per_eval=1`, then ours, alternately `--repeat` times, so that outside load
slows both alike (off a CPU, first our two ways race and the faster is kept; the race is shown).
Prints each time, the speed-up (goal: >= 3x on a CPU, >= 30x on a GPU), the largest difference
relative to the map's largest absolute value (must be <= 1e-4; on a GPU in float32, since TF32
convolutions differ by ~1e-2 between any two batchings), and the fast preview's time, number of
network evaluations and Pearson correlation with the exact map.

    python bench/occlusion.py [--model efficientnet_lite0] [--window 16] [--stride 8] [--repeat 1]
"""
import argparse
import statistics
import time

import torch
from captum.attr import Occlusion


from vislib import load_model
from vislib.attribution import perturbation as occlusion_module
from vislib.attribution import occlusion, occlusion_preview
from vislib.attribution.common import top_class
from vislib.images import sample_images
from vislib.runtime import describe


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def relative_difference(mine: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest difference relative to the reference map's largest absolute value."""
    return float((mine - reference).abs().max() / reference.abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    model = load_model(args.model)
    x = model.preprocess(sample_images()["chelsea (cat)"]())[None].to(model.device)
    fill = x.mean((2, 3))[0]
    target = top_class(model, x)
    print(f"{args.model}, {x.shape[-1]} px, window {args.window}, stride {args.stride}, "
          f"target {target} ({model.labels[target]}), on {describe(model.device)}")

    def captum():
        with model.running() as net:
            return Occlusion(net).attribute(
                x, target=target, sliding_window_shapes=(3, args.window, args.window),
                strides=(3, args.stride, args.stride), baselines=fill.view(1, 3, 1, 1))[0].mean(0).float().cpu()

    def ours():
        return occlusion(model, x, target, args.window, args.stride, fill)

    if model.device.type != "cpu":
        # Off a CPU, the first runs race the incremental executor against plain wide batches
        # (perturbation._Race); the timed runs below then use the faster. Show the race.
        race = occlusion_module._races.setdefault(model.net, occlusion_module._Race())
        for _ in range(2 * race.TRIES):
            ours()
        for kind, runs in race.seconds.items():
            tried = "; ".join(f"{'incremental' if way else 'plain'} {', '.join(f'{t:.3f}' for t in times)} s"
                              for way, times in sorted(runs.items()))
            print(f"race: {tried}; keeps {'incremental' if race.pick(kind) else 'plain'}")
    theirs_s, ours_s = [], []
    for _ in range(args.repeat):
        t, reference = timed(captum)
        theirs_s.append(t)
        t, mine = timed(ours)
        ours_s.append(t)
    theirs, mine_t = statistics.median(theirs_s), statistics.median(ours_s)
    error = relative_difference(mine, reference)
    print(f"captum Occlusion (perturbations_per_eval=1): {theirs:.2f} s")
    print(f"vislib occlusion: {mine_t:.2f} s")
    print(f"speed-up: {theirs / mine_t:.2f}x; max |difference| / max |map|: {error:.2e}")
    if model.device.type == "cuda":
        # cuDNN convolves in TF32 by default, so any two batchings differ by ~1e-2 of the map (Captum
        # against itself batched too); the equality is checked in float32, as the tests do.
        before, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False
        reference, pick = captum(), occlusion_module._Race.pick
        for way in (False, True):  # both ways of the race, whichever it kept
            occlusion_module._Race.pick = lambda self, kind: way
            error = relative_difference(ours(), reference)
            print(f"in float32 (TF32 off), {'incremental' if way else 'plain'}: max |difference| / max |map|: "
                  f"{error:.2e}")
        occlusion_module._Race.pick = pick
        torch.backends.cudnn.allow_tf32 = before

    t, (preview, info) = timed(lambda: occlusion_preview(model, x, target, args.window, args.stride, fill))
    corr = float(torch.corrcoef(torch.stack([preview.flatten(), reference.flatten()]))[0, 1])
    print(f"preview: {t:.2f} s ({mine_t / t:.1f}x faster than the exact map), {info['evaluations']} of "
          f"{info['of']} evaluations, correlation with the exact map {corr:.3f}")


if __name__ == "__main__":
    main()
