"""A mobilenet_v2_035-FPN segmenter learns digit scenes: real handwritten digits on real texture photographs."""
import numpy as np
import pytest

import cnnzoo
from cnnzoo.data.bundled import digit_scenes


@pytest.mark.slow
def test_segmenter_learns_held_out_digit_scenes():
    """Issue 16's fast setting: 1,600 scenes at 64 px with digit_scenes' default 16-40 px digits, 10 epochs
    (1,000 steps), scored on 200 scenes of digits never seen in training. Predicting background everywhere scores
    mIoU 0.09. With the sub-pixel ("transposed") head, one-cycle AdamW and the segmenter loss "auto"
    (cross-entropy + Dice), seeds 0-2 of data and initialisation measured held-out mIoU 0.64 / 0.62 / 0.59;
    the bilinear head 0.56 (seed 0), cross-entropy alone 0.43, 600 steps 0.49 / 0.42: the bar sits under
    every seed of this setting, not of cheaper ones."""
    train = digit_scenes(1600, size=64, seed=0, split="train")
    test = digit_scenes(200, size=64, seed=7, split="test")    # digits never seen in training
    data = cnnzoo.data.from_arrays(train["images"], masks=train["masks"], class_names=train["class_names"],
                                   batch_size=16, validation_split=0.0, seed=0)
    model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=11, channels=128, upsampling="transposed")
    result = cnnzoo.train.fit(model, data, epochs=10, learning_rate=1e-2, schedule="one_cycle", verbose=0, seed=0)
    report = cnnzoo.evaluate(result.model, (test["images"], test["masks"]), class_names=train["class_names"])
    print(report.summary())
    assert report.per_class_iou["background"] > 0.9
    digits = [report.per_class_iou[str(d)] for d in range(10)]
    assert sum(v > 0.3 for v in digits) >= 8, report.summary()    # the digits are told apart, not one or two
    assert report.miou >= 0.5, report.summary()
