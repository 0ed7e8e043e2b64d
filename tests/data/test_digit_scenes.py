"""digit_scenes: real handwritten digits on real texture photographs, with masks and boxes that agree."""
import numpy as np
import pytest

from cnnzoo.data.bundled import digit_scenes


def test_scenes_masks_and_boxes_agree():
    scenes = digit_scenes(24, size=64, seed=3, scale=(16, 32))
    images, masks, boxes = scenes["images"], scenes["masks"], scenes["boxes"]
    assert images.shape == (24, 64, 64, 3) and images.dtype == np.uint8
    assert masks.shape == (24, 64, 64) and masks.dtype == np.uint8 and masks.max() <= 10
    assert scenes["class_names"] == ["background"] + [str(d) for d in range(10)]
    assert len(boxes) == 24 and all(b.shape[1] == 5 for b in boxes)
    assert all(1 <= len(b) <= 4 for b in boxes)
    for mask, image_boxes in zip(masks, boxes):
        covered = np.zeros_like(mask, bool)
        for x0, y0, x1, y1, label in image_boxes.astype(int):
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            region = mask[y0:y1, x0:x1]
            # the box is tight around this digit's strokes, labelled digit + 1
            assert (region == label + 1).any(axis=0)[[0, -1]].all() and (region == label + 1).any(axis=1)[[0, -1]].all()
            covered[y0:y1, x0:x1] |= region == label + 1
        assert np.array_equal(covered, mask > 0)   # every stroke pixel belongs to a box, no overlaps elsewhere
    # strokes stand out from the texture: their pixels differ from the background's mean colour
    fg = images[masks > 0].astype(float).mean(0)
    bg = images[masks == 0].astype(float).mean(0)
    assert np.abs(fg - bg).max() > 30


def test_scenes_are_a_function_of_the_seed_and_splits_are_disjoint():
    a, b = digit_scenes(4, size=48, seed=1, scale=(16, 24)), digit_scenes(4, size=48, seed=1, scale=(16, 24))
    np.testing.assert_array_equal(a["images"], b["images"])
    assert not np.array_equal(a["images"], digit_scenes(4, size=48, seed=2, scale=(16, 24))["images"])
    from cnnzoo.data.bundled import _digit_pool

    train, test = _digit_pool("train")[0], _digit_pool("test")[0]
    assert len(train) + len(test) == 1797
    assert not (train.reshape(len(train), -1)[:, None] == test.reshape(len(test), -1)[None]).all(-1).any()


@pytest.mark.parametrize("kwargs,name", [({"n": 0}, "n"), ({"size": 16}, "size"), ({"scale": (8, 200)}, "scale"),
                                         ({"digits_per_scene": (3, 1)}, "digits_per_scene"),
                                         ({"split": "val"}, "split")])
def test_bad_arguments_name_themselves(kwargs, name):
    args = {"n": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        digit_scenes(**args)
