"""Segmentation seeded by a map: the mask of a pasted object lies on it; GrabCut's seeds come from
the map's quantiles; the cut-out is the picture with the mask as its alpha; mistakes are one sentence."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from vislib import attribution
from vislib.attribution.segment import seed_labels


def pasted(model, cat, at=(56, 40), canvas=128, size=64):
    """The cat (its centre square, `size` px) on a grey canvas at `at` (x, y); its box as a mask."""
    photo = TF.center_crop(TF.resize(cat, size), size)
    board = Image.new("RGB", (canvas, canvas), (128, 128, 128))
    board.paste(photo, at)
    box = np.zeros((canvas, canvas), bool)
    box[at[1]:at[1] + size, at[0]:at[0] + size] = True
    return TF.normalize(TF.to_tensor(board), model.mean, model.std)[None], box


@pytest.mark.parametrize("at", [(56, 40), (4, 60)])
def test_the_mask_of_a_pasted_object_lies_on_the_object(at, lite0, cat):
    x, box = pasted(lite0, cat, at)
    mask = attribution.segment(lite0, x, 281)
    assert mask.dtype == bool and mask.shape == (128, 128)
    assert (mask & box).sum() / mask.sum() >= 0.9  # on the object
    assert (mask & box).sum() / box.sum() >= 0.2   # and a good part of it


def test_another_method_and_its_parameters_pass_through(lite0, cat):
    x, box = pasted(lite0, cat)
    mask = attribution.segment(lite0, x, 281, method="layercam", layer="blocks.5.0")
    assert (mask & box).sum() / mask.sum() >= 0.9


def test_grabcut_is_seeded_from_the_maps_quantiles():
    labels = seed_labels(np.arange(100.0).reshape(10, 10))
    flat = labels.ravel()
    assert (flat[:25] == cv2.GC_BGD).all()        # the weakest quarter: surely background
    assert (flat[25:66] == cv2.GC_PR_BGD).all()   # the middle: probably background
    assert (flat[66:] == cv2.GC_PR_FGD).all()     # the strongest third: probably the object
    cam = np.zeros((10, 10))
    cam[2:4, 2:4] = 1.0  # a CAM is 0 over most of the picture: ties do not make it all object
    labels = seed_labels(cam)
    assert (labels == cv2.GC_PR_FGD).sum() == 4 and (labels == cv2.GC_BGD).sum() == 96


def test_the_cut_out_is_the_picture_with_the_mask_as_alpha(lite0):
    pixels = torch.rand(3, 16, 20).mul(255).round().div(255)
    x = lite0.preprocessing.normalise(pixels)[None]
    mask = np.zeros((16, 20), bool)
    mask[4:9, 3:15] = True
    cut = np.asarray(attribution.cut_out(lite0, x, mask))
    assert cut.shape == (16, 20, 4)
    assert np.array_equal(cut[:, :, 3], mask * 255)
    assert np.array_equal(cut[:, :, :3], (pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_mistakes_are_one_sentence(lite0):
    x = torch.zeros(1, 3, 16, 16)
    for call, message in (
            (lambda: attribution.segment(lite0, x, 1, method="lime"),
             "Unknown attribution method 'lime'; choose one of: saliency"),
            (lambda: attribution.segment(lite0, x, 1, method="edges"),  # a grey picture has no edges
             "The map is the same everywhere, so it marks no object to cut out."),
            (lambda: attribution.cut_out(lite0, x, np.ones((8, 8), bool)),
             "The mask is 8 x 8 pixels but the picture 16 x 16."),
            (lambda: attribution.segment(lite0, x[0], 1), r"expected a batch \[1,3,H,W\], got \(3, 16, 16\)")):
        with pytest.raises(ValueError, match=message):
            call()
